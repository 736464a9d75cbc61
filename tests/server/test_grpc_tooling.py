"""The embedded server as the gRPC ecosystem's tools see it: grpcurl (grpc-go) with server
reflection and no proto file, the standard health service, well-formed errors, and a stock
grpcio client (default 4 MiB message limit) paging through a wide log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from server_helpers import GRPCURL_TIMEOUT_S, BareH2Subscription, ThreadServer, grpcurl, shell_job

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.proto import hodei_pb2 as pb

# A service of the platform's that this server does not implement, for grpcurl to call.
FOREIGN_PROTO = """syntax = "proto3";
package hodei;
import "google/protobuf/empty.proto";
service WorkerService { rpc Register(google.protobuf.Empty) returns (google.protobuf.Empty); }
"""


@pytest.fixture
def tcp_server(home: Path) -> Iterator[ThreadServer]:
    server = ThreadServer(home)
    yield server
    server.close()


@pytest.fixture(params=["unix", "tcp"])
def target(request: pytest.FixtureRequest) -> str:
    """The embedded server's address: its Unix socket (a subprocess) or a loopback port."""
    if request.param == "unix":
        return request.getfixturevalue("server").target  # type: ignore[no-any-return]
    return request.getfixturevalue("tcp_server").address  # type: ignore[no-any-return]


def test_grpcurl_lists_and_describes_with_no_proto_file(target: str) -> None:
    listed = grpcurl(target, "list")
    assert listed.returncode == 0, listed.stderr
    services = {"hodei.JobExecutionService", "hodei.LogStreamService", "grpc.health.v1.Health"}
    assert services <= set(listed.stdout.split())
    described = grpcurl(target, "describe", "hodei.LogStreamService")
    assert described.returncode == 0, described.stderr
    subscribe = "rpc SubscribeLogs ( .hodei.SubscribeLogsRequest ) returns ( stream .hodei.JobLogEntry );"
    assert subscribe in described.stdout
    message = grpcurl(target, "describe", "hodei.JobDefinition")
    assert message.returncode == 0 and "map<string, string> environment = 6;" in message.stdout, message.stderr


def test_grpcurl_calls_and_errors_are_well_formed(target: str, tmp_path: Path) -> None:
    health = grpcurl(target, "grpc.health.v1.Health/Check")
    assert health.returncode == 0 and json.loads(health.stdout) == {"status": "SERVING"}, health.stderr
    refused = grpcurl(target, "hodei.JobExecutionService/GetJob", flags=["-d", '{"job_id": {"value": "nope"}}'])
    assert refused.returncode != 0
    assert "Code: InvalidArgument" in refused.stderr and "'nope' is not a job id" in refused.stderr
    # A method the server does not have: grpclib's own answer lacked content-type, which
    # grpc-go reported as "Code: Unknown, Message: malformed header".
    (tmp_path / "worker.proto").write_text(FOREIGN_PROTO)
    unknown = grpcurl(
        target, "hodei.WorkerService/Register", flags=["-import-path", str(tmp_path), "-proto", "worker.proto"]
    )
    assert "Code: Unimplemented" in unknown.stderr, unknown.stderr
    assert "no method '/hodei.WorkerService/Register' on this server" in unknown.stderr


def health_watch(address: str) -> Iterator[HealthCheckResponse]:
    channel = grpc.insecure_channel(address)
    watch = channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=HealthCheckRequest.SerializeToString,
        response_deserializer=HealthCheckResponse.FromString,
    )
    try:
        yield from watch(HealthCheckRequest(service="hodei.LogStreamService"), timeout=GRPCURL_TIMEOUT_S)
    finally:
        channel.close()


def test_health_is_not_serving_while_the_store_cannot_write(tcp_server: ThreadServer) -> None:
    watch = health_watch(tcp_server.address)
    assert next(watch).status == HealthCheckResponse.SERVING
    tcp_server.set_write_error("the disk holding /tmp/x is full")
    assert next(watch).status == HealthCheckResponse.NOT_SERVING
    checked = grpcurl(tcp_server.address, "grpc.health.v1.Health/Check")
    assert json.loads(checked.stdout) == {"status": "NOT_SERVING"}, checked.stderr
    tcp_server.set_write_error(None)
    assert next(watch).status == HealthCheckResponse.SERVING
    unknown = grpcurl(tcp_server.address, "grpc.health.v1.Health/Check", flags=["-d", '{"service": "x.Y"}'])
    assert "Code: NotFound" in unknown.stderr


def test_a_stock_grpcio_client_pages_through_wide_characters(client: HodeiClient, server: Server) -> None:
    """5,000 lines of 600 '€' (9 MB): pages sized by encoded bytes stay under grpcio's
    default 4 MiB limit, where pages sized in characters made one 9.3 MB response."""
    job_id = shell_job(client, "python3 -c \"print('\\n'.join(f'{n:05} ' + '€' * 600 for n in range(1, 5001)))\"")
    assert client.wait_final(job_id).status == pb.JOB_STATUS_COMPLETED
    with grpc.insecure_channel(server.target) as stock:  # default options: 4 MiB per message
        get_logs = stock.unary_unary(
            "/hodei.LogStreamService/GetLogs",
            request_serializer=pb.GetLogsRequest.SerializeToString,
            response_deserializer=pb.GetLogsResponse.FromString,
        )
        lines: list[str] = []
        page_bytes: list[int] = []
        while True:
            page = get_logs(pb.GetLogsRequest(job_id=job_id, since_sequence=len(lines), limit=5000), timeout=30)
            page_bytes.append(page.ByteSize())
            assert [e.sequence for e in page.entries] == list(range(len(lines) + 1, len(lines) + 1 + len(page.entries)))
            lines.extend(e.line for e in page.entries)
            if not page.has_more:
                break
    assert lines == [f"{n:05} " + "€" * 600 for n in range(1, 5001)]
    assert len(page_bytes) >= 3 and max(page_bytes) <= 3 * 1024 * 1024, page_bytes


@pytest.mark.parametrize("window", [1000, 1 << 24])
def test_pages_keep_to_the_clients_flow_control_window(client: HodeiClient, server: Server, window: int) -> None:
    """A page of 60 kB: split into 16 KiB DATA frames within a wide window, and held to a
    1,000-byte window (sent as the client grants credit): every line once, in order, and
    never a byte beyond what the client allowed."""
    job_id = shell_job(client, "python3 -c \"print('\\n'.join(f'{n:03} ' + 'x' * 200 for n in range(1, 301)))\"")
    assert client.wait_final(job_id).status == pb.JOB_STATUS_COMPLETED
    entries, trailers, frames = BareH2Subscription(server.target, job_id, window).read_to_end()
    assert trailers.get("grpc-status") == "0", trailers
    assert [entry.sequence for entry in entries] == list(range(1, 301))
    assert [entry.line for entry in entries] == [f"{n:03} " + "x" * 200 for n in range(1, 301)]
    assert frames >= (60 if window == 1000 else 4)  # at most 1,000 bytes or 16 KiB a frame
