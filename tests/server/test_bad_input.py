"""Bad input gets a clear answer and loses nothing (the README's "Limits and bad input" table,
row by row, against a real server)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from functools import partial
from pathlib import Path

import grpc
import pytest
from server_helpers import all_logs, shell_job, subscribe

from hodei_stream.api import MAX_JOB_TIMEOUT_S
from hodei_stream.client import HodeiClient, client_error
from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server.output_lines import MAX_LINE_BYTES
from hodei_stream.server.rpc import MAX_REQUEST_BYTES


def rpc_error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()  # type: ignore[operator]
    return error.value


def test_malformed_ids_are_invalid_and_unknown_ones_not_found(client: HodeiClient) -> None:
    for value in ("", "nope", "550e8400-e29b-41d4-a716", "'; DROP TABLE jobs; --"):
        error = rpc_error(lambda value=value: client.jobs.CancelJob(pb.CancelJobRequest(job_id=pb.JobId(value=value))))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a job id" in error.details()
    unknown = str(uuid.uuid4())
    error = rpc_error(lambda: client.logs.GetLogs(pb.GetLogsRequest(job_id=unknown)))
    assert error.code() == grpc.StatusCode.NOT_FOUND and unknown in error.details()
    # A job id chosen by the client must be a UUID too.
    definition = pb.JobDefinition(job_id=pb.JobId(value="my-job"), command="/bin/true")
    error = rpc_error(lambda: client.jobs.QueueJob(pb.QueueJobRequest(job_definition=definition)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_empty_command_is_refused(client: HodeiClient) -> None:
    error = rpc_error(lambda: client.jobs.QueueJob(pb.QueueJobRequest(job_definition=pb.JobDefinition(name="x"))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "no command" in error.details()
    assert client.list_jobs().total_count == 0


def test_missing_command_fails_and_says_so(client: HodeiClient) -> None:
    job = client.wait_final(client.queue_job("missing", "no-such-command-hodei"))
    assert job.status == pb.JOB_STATUS_FAILED
    assert job.executions[0].error_message == "cannot start 'no-such-command-hodei': No such file or directory"


def test_nul_and_invalid_bytes_are_kept_visible(client: HodeiClient) -> None:
    job_id = shell_job(client, r"printf 'a\0b\n\xc3\x28 \xff\n'")
    assert [a.entry.line for a in subscribe(client, job_id)] == ["a\0b", "\ufffd( \ufffd"]


def test_ten_mebibytes_without_a_newline_are_split_and_nothing_is_lost(client: HodeiClient) -> None:
    size = 10 * 1024 * 1024
    script = f"import sys; sys.stdout.write('0123456789' * {size // 10}); sys.stdout.flush()"
    job_id = client.queue_job("10 MiB", "python3", ["-c", script])
    lines = [a.entry.line for a in subscribe(client, job_id)]
    assert len(lines) == -(-size // MAX_LINE_BYTES)  # pieces of MAX_LINE_BYTES, the last shorter
    assert all(len(line) <= MAX_LINE_BYTES for line in lines)
    assert "".join(lines) == "0123456789" * (size // 10)
    assert [e.line for e in all_logs(client, job_id)] == lines


def test_a_job_that_closes_stdout_early_still_ends_with_its_main_process(client: HodeiClient) -> None:
    job_id = shell_job(client, "echo before; exec >&-; echo after >&2; read -t 0.3 < /dev/zero; exit 0")
    job = client.wait_final(job_id, deadline_s=10)
    assert job.status == pb.JOB_STATUS_COMPLETED
    assert {(e.line, e.is_stderr) for e in all_logs(client, job_id)} == {("before", False), ("after", True)}


def test_negative_and_huge_tail_lines_and_limits(client: HodeiClient) -> None:
    job_id = shell_job(client, "seq 1 30")
    client.wait_final(job_id)
    # tail_lines <= 0 means the whole history, a tail longer than the log the whole log.
    for tail in (-1, -(2**31), 0, 2**31 - 1):
        assert [a.entry.sequence for a in subscribe(client, job_id, tail_lines=tail)] == list(range(1, 31))
    for limit in (-1, 0, -(2**31)):  # the default page
        assert len(client.get_logs(job_id, limit=limit).entries) == 30
    assert len(client.get_logs(job_id, since_sequence=2**62).entries) == 0
    assert [e.sequence for e in client.get_logs(job_id, since_sequence=-(2**62), limit=2).entries] == [1, 2]
    assert client.jobs.ListJobs(pb.ListJobsRequest(limit=-5, offset=-5)).total_count == 1


def test_a_client_speaking_another_service_gets_unimplemented(client: HodeiClient) -> None:
    register = client.channel.unary_unary("/hodei.WorkerService/Register")  # the platform's, not ours
    error = rpc_error(lambda: register(b"", timeout=10))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error.details() == "no method '/hodei.WorkerService/Register' on this server"
    translated = client_error(error, client.server, "Check")
    assert translated.status == ExitStatus.UNREACHABLE and "does not speak the Hodei API" in str(translated)
    assert isinstance(translated, ClientError)


def run_server(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hodei_stream.server.daemon", "run"],
        env={"HODEI_STREAM_HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_an_unusable_state_folder_stops_the_server_with_one_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    result = run_server(not_a_folder / "state")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "state folder" in result.stderr and "HODEI_STREAM_HOME" in result.stderr
    # A store that cannot be opened: one line too, and no socket left behind.
    home = tmp_path / "home"
    (home / "jobs.sqlite3").mkdir(parents=True)
    result = run_server(home)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cannot open the job store" in result.stderr
    assert not (home / "server.sock").exists() and not (home / "server.json").exists()


def definition(**fields: object) -> pb.JobDefinition:
    """A job definition that is valid but for ``fields``."""
    return pb.JobDefinition(**{"name": "bad", "command": "/bin/true", **fields})  # type: ignore[arg-type]


def duration(seconds: int, nanos: int = 0) -> pb.TimeoutConfig:
    return pb.TimeoutConfig(execution_timeout={"seconds": seconds, "nanos": nanos})


# The README's bad-definition rows: each refused INVALID_ARGUMENT by a message naming the field.
BAD_DEFINITIONS = {
    "NUL in the command": (definition(command="/bin/e\0cho"), "command contains a NUL byte"),
    "NUL in an argument": (definition(arguments=["a", "b\0"]), "arguments[1] contains a NUL byte"),
    "NUL in an env name": (definition(environment={"A\0B": "1"}), r"environment: the name 'A\x00B' contains a NUL"),
    "NUL in an env value": (definition(environment={"A": "1\0"}), "environment['A'] contains a NUL byte"),
    "= in an env name": (definition(environment={"A=B": "1"}), "environment: the name 'A=B' contains ="),
    "empty env name": (definition(environment={"": "1"}), "environment: an empty variable name"),
    "timeout of 3.2e11 s": (
        definition(timeout=duration(320_000_000_000)),
        "timeout.execution_timeout: 320,000,000,000s, at most 2,073,600s (24 days)",
    ),
    "negative timeout": (definition(timeout=duration(-3)), "timeout.execution_timeout: negative (-3s)"),
    "nanos out of range": (
        definition(timeout=duration(1, 2_000_000_000)),
        "timeout.execution_timeout: not a valid Duration",
    ),
    "nanos of the other sign": (definition(timeout=duration(1, -5)), "timeout.execution_timeout: not a valid Duration"),
    "invalid cleanup timeout": (
        definition(timeout=pb.TimeoutConfig(cleanup_timeout={"nanos": -(10**9)})),
        "timeout.cleanup_timeout: not a valid",
    ),
    "command too long": (definition(command="x" * 4097), "command: 4,097 bytes, at most 4,096"),
    "argument too long": (definition(arguments=["€" * 50_000]), "arguments[0]: 150,000 bytes, at most 131,071"),
    "arguments too long together": (definition(arguments=["x" * 100_000] * 11), "at most 1,048,576"),
    "name too long": (definition(name="n" * 1025), "name: 1,025 characters, at most 1,024"),
    "too many tags": (definition(tags=["t"] * 101), "tags: 101 tags, at most 100"),
    "malformed job id": (definition(job_id=pb.JobId(value="my-job")), "'my-job' is not a job id"),
}


@pytest.mark.parametrize("case", BAD_DEFINITIONS)
def test_bad_job_definitions_are_refused_naming_the_field(client: HodeiClient, case: str) -> None:
    bad, message = BAD_DEFINITIONS[case]
    error = rpc_error(lambda: client.jobs.QueueJob(pb.QueueJobRequest(job_definition=bad), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details() and "\n" not in error.details(), error.details()
    assert client.list_jobs().total_count == 0  # nothing queued, no supervisor started


def test_a_definition_at_every_limit_runs(client: HodeiClient) -> None:
    at_limits = definition(
        command="/bin/bash",
        name="n" * 1024,
        tags=["t"] * 100,
        arguments=["-c", 'printf "%s %s %s\\n" "${#0}" "$EMPTY" "${#BIG}"', "a" * 131_071],
        environment={"EMPTY": "", "BIG": "b" * (131_071 - len("BIG="))},
        timeout=duration(MAX_JOB_TIMEOUT_S),
    )
    job_id = client.jobs.QueueJob(pb.QueueJobRequest(job_definition=at_limits), timeout=10).job_id.value
    assert client.wait_final(job_id).status == pb.JOB_STATUS_COMPLETED
    assert [e.line for e in all_logs(client, job_id)] == [f"131071  {131_071 - 4}"]
    # Zero is no timeout, as before.
    job_id = client.jobs.QueueJob(
        pb.QueueJobRequest(job_definition=definition(timeout=duration(0))), timeout=10
    ).job_id.value
    assert client.wait_final(job_id).status == pb.JOB_STATUS_COMPLETED


def test_an_undecodable_request_is_invalid_argument(client: HodeiClient) -> None:
    raw_get_job = client.channel.unary_unary("/hodei.JobExecutionService/GetJob")
    error = rpc_error(lambda: raw_get_job(b"\xff\xff\xff", timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "the request is not a valid hodei.GetJobRequest message"


def test_a_long_search_or_cancel_reason_is_refused(client: HodeiClient) -> None:
    error = rpc_error(lambda: client.jobs.ListJobs(pb.ListJobsRequest(search_term="s" * 1025), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "search_term: 1,025 characters, at most 1,024"
    job_id = shell_job(client, "sleep 30")
    cancel = pb.CancelJobRequest(job_id=pb.JobId(value=job_id), reason="r" * 1025)
    error = rpc_error(lambda: client.jobs.CancelJob(cancel, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details().startswith("reason: 1,025 characters")
    assert client.jobs.CancelJob(pb.CancelJobRequest(job_id=pb.JobId(value=job_id), reason="r" * 1024)).success


def test_a_compressed_request_is_unimplemented(client: HodeiClient) -> None:
    request = pb.GetJobRequest(job_id=pb.JobId(value="0" * 10_000))  # gzip makes it smaller: grpcio sends it gzipped
    error = rpc_error(lambda: client.jobs.GetJob(request, timeout=10, compression=grpc.Compression.Gzip))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error.details() == "compressed requests are not supported (send them uncompressed)"


def test_a_huge_job_id_is_refused_at_once_and_holds_no_one_up(client: HodeiClient, server: Server) -> None:
    """A refusal quotes 64 characters of what it got: echoing the id made hpack take minutes
    (quadratic Huffman coding of grpc-message) while no other client got an answer."""
    job_id = shell_job(client, "true")
    refusals: list[tuple[int, float, grpc.RpcError]] = []

    def send_huge_ids() -> None:
        with HodeiClient(server) as hostile:
            for size in (1_000_000, 10_000_000):
                started = time.monotonic()
                request = pb.GetJobRequest(job_id=pb.JobId(value="x" * size))
                error = rpc_error(partial(hostile.jobs.GetJob, request, timeout=120))
                refusals.append((size, time.monotonic() - started, error))

    hostile = threading.Thread(target=send_huge_ids)
    hostile.start()
    latencies: list[float] = []
    while hostile.is_alive() or not latencies:
        started = time.monotonic()
        assert client.get_job(job_id).job.job_id.value == job_id
        latencies.append(time.monotonic() - started)
    hostile.join()
    (_, one_mb_s, one_mb), (_, ten_mb_s, ten_mb) = refusals
    assert one_mb.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert one_mb.details() == f"'{'x' * 64}…' is not a job id (expected a UUID)"
    # Over MAX_REQUEST_BYTES: refused from its length, before its bytes are read.
    assert ten_mb.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ten_mb.details() == f"a request message of 10,000,010 bytes; at most {MAX_REQUEST_BYTES:,}"  # id and framing
    assert one_mb_s < 5 and ten_mb_s < 5, f"refusing took {one_mb_s:.2f}s (1 MB id), {ten_mb_s:.2f}s (10 MB)"
    # Generous for a loaded 2-core machine; before the fix a 1 MB id held every client ~90 s.
    assert max(latencies) < 0.5, f"GetJob took up to {max(latencies):.3f}s while huge ids were refused"
