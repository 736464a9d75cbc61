"""The generated gRPC code in hodei_stream/proto/ must be what protos/hodei.proto makes now."""

from __future__ import annotations

from pathlib import Path

from hodei_stream.proto import generate


def test_generated_code_is_current(tmp_path: Path) -> None:
    fresh = generate.generate(tmp_path)
    for path in fresh:
        installed = generate.PACKAGE_DIR / path.name
        assert installed.exists(), f"{installed.name} is missing: run ./install.sh"
        assert installed.read_bytes() == path.read_bytes(), f"{installed.name} is stale: run ./install.sh"


def test_wire_contract_field_numbers() -> None:
    """A few of hodei-api.md's numbers, read back from the generated descriptors."""
    from hodei_stream.proto import hodei_pb2 as pb

    def numbers(message: type) -> dict[str, int]:
        return {field.name: field.number for field in message.DESCRIPTOR.fields}

    assert numbers(pb.JobLogEntry) == {"job_id": 1, "line": 2, "is_stderr": 3, "timestamp": 4, "sequence": 5}
    assert numbers(pb.SubscribeLogsRequest) == {"job_id": 1, "include_history": 2, "tail_lines": 3}
    assert numbers(pb.GetLogsRequest) == {"job_id": 1, "limit": 2, "since_sequence": 3}
    assert numbers(pb.JobDefinition)["timeout"] == 11 and numbers(pb.JobDefinition)["tags"] == 12
    assert numbers(pb.JobExecution)["exit_code"] == 9
    assert (
        pb.JobExecution.DESCRIPTOR.fields_by_name["exit_code"].type
        == pb.JobExecution.DESCRIPTOR.fields_by_name["error_message"].type
    )
    assert pb.JobStatus.Value("JOB_STATUS_TIMEOUT") == 7
    assert pb.DESCRIPTOR.package == "hodei"
    assert [m.name for m in pb.DESCRIPTOR.services_by_name["LogStreamService"].methods] == ["SubscribeLogs", "GetLogs"]
