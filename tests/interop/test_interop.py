"""The real ``stream-logs`` against gRPC servers nobody here wrote: grpcio (Google's stack)
and @grpc/grpc-js (node's), each plaintext and with TLS, and grpcio compressing every
answer with gzip (grpc-js's server cannot).
Every entry must arrive once, in order, with its exact text, and the exit status be the
README's (0: completed; 3: no such job)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from hodei_stream.endpoint import ClientSettings, server_at
from hodei_stream.exit_codes import ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.proto import hodei_pb2_grpc
from hodei_stream.stream import wire
from hodei_stream.stream.wire import Call, CallError
from tests.conftest import self_signed_certificate

from . import grpcio_server
from .one_job import JOB_ID, LINES, write_lines

NODE_FOLDER = Path(__file__).parent / "node"
PROTO = Path(__file__).parents[2] / "protos" / "hodei.proto"
STREAM_LOGS = Path(sys.executable).parent / "stream-logs"
OTHER_JOB = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["plain", "tls", "gzip"])
def grpcio_target(request: pytest.FixtureRequest, certificate: tuple[Path, Path]) -> Iterator[tuple[str, str]]:
    server, address = grpcio_server.serve(request.param, certificate)
    yield address, request.param
    server.stop(grace=None)


# No gzip here: grpc-js's server does not compress its answers (its server-interceptors.js:
# "response compression is currently not supported"); grpcio's gzip case covers compression.
@pytest.fixture(params=["plain", "tls"])
def node_target(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path], tmp_path: Path
) -> Iterator[tuple[str, str]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the @grpc/grpc-js server runs on it)")
    if not (NODE_FOLDER / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.skip(f"@grpc/grpc-js is not installed: run npm install --no-audit --no-fund in {NODE_FOLDER}")
    cert, key = certificate
    process = subprocess.Popen(
        [
            node,
            str(NODE_FOLDER / "server.js"),
            str(PROTO),
            str(write_lines(tmp_path / "lines.json")),
            request.param,
            str(cert),
            str(key),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = process.stdout.readline().strip() if process.stdout else ""
        assert port.isdigit(), f"the node server did not start (exit {process.poll()})"
        yield f"127.0.0.1:{port}", request.param
    finally:
        process.kill()
        process.wait(10)


def stream_logs(
    target: str, mode: str, certificate: tuple[Path, Path], job_id: str, *options: str
) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("HODEI_GRPC_URL", "HODEI_TOKEN", "HODEI_TLS_CA")
    }
    if mode == "tls":
        env["HODEI_TLS_CA"] = str(certificate[0])
    return subprocess.run(
        [str(STREAM_LOGS), "--server", target, "--json", "-q", *options, job_id],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def check_every_entry_once_in_order(
    target: str, mode: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = stream_logs(target, mode, certificate, JOB_ID)
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [record["sequence"] for record in records] == list(range(1, len(LINES) + 1))
    assert [(record["line"], record["stream"] == "stderr") for record in records] == LINES
    assert "Traceback" not in shown.stderr

    unknown = stream_logs(target, mode, certificate, OTHER_JOB)
    assert unknown.returncode == 3 and len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr

    if mode == "tls":
        monkeypatch.setenv("HODEI_TLS_CA", str(certificate[0]))
    call = Call(
        target,
        "/hodei.LogStreamService/SubscribeLogs",
        pb.SubscribeLogsRequest(job_id=JOB_ID).SerializeToString(),
        settings=server_at(target).settings,
    )
    encoding = dict(call.initial_metadata()).get("grpc-encoding", "identity")
    call.close()
    assert encoding == ("gzip" if mode == "gzip" else "identity")  # the answers really were compressed


def test_grpcio_server(
    grpcio_target: tuple[str, str], certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    check_every_entry_once_in_order(*grpcio_target, certificate, monkeypatch)


def test_grpc_js_server(
    node_target: tuple[str, str], certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    check_every_entry_once_in_order(*node_target, certificate, monkeypatch)


@pytest.mark.parametrize("tail", [None, 1, 10, len(LINES), len(LINES) + 100])
def test_no_follow_and_tail_on_a_grpcio_server(certificate: tuple[Path, Path], tail: int | None) -> None:
    # A server that promises exact sequences but not where a subscription's history ends:
    # the history comes by GetLogs, each line once, in order, the job still running.
    server, address = grpcio_server.serve("plain")
    try:
        options = ["--no-follow"] if tail is None else ["--no-follow", "--tail", str(tail)]
        shown = stream_logs(address, "plain", certificate, JOB_ID, *options)
    finally:
        server.stop(grace=None)
    assert shown.returncode == ExitStatus.STILL_RUNNING, shown.stderr
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    first = 1 if tail is None else max(1, len(LINES) - tail + 1)
    assert [record["sequence"] for record in records] == list(range(first, len(LINES) + 1))
    assert [(record["line"], record["stream"] == "stderr") for record in records] == LINES[first - 1 :]


class QuietLogs(hodei_pb2_grpc.LogStreamServiceServicer):
    """A stream that sends one entry and then nothing until ``done``: an idle job."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def SubscribeLogs(self, request: pb.SubscribeLogsRequest, context: grpc.ServicerContext):  # type: ignore[no-untyped-def]
        yield pb.JobLogEntry(job_id=JOB_ID, line="first", sequence=1)
        self.done.wait(20)


def test_a_grpcio_server_that_finds_our_pings_too_many_makes_us_ping_less(monkeypatch: pytest.MonkeyPatch) -> None:
    """grpc-core refuses a third PING without data between (GOAWAY "too_many_pings"): the
    call ends UNAVAILABLE (the follower reconnects) and later calls ping half as often."""
    monkeypatch.setitem(wire.keepalive_slowdown, "factor", 1)
    logs = QuietLogs()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    hodei_pb2_grpc.add_LogStreamServiceServicer_to_server(logs, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        call = Call(
            f"127.0.0.1:{port}", "/hodei.LogStreamService/SubscribeLogs", b"", keepalive_time=0.3, keepalive_timeout=5
        )
        with pytest.raises(CallError) as failure:
            list(call.message_batches())
    finally:
        logs.done.set()
        server.stop(grace=None)
    assert failure.value.code == "UNAVAILABLE"
    assert wire.keepalive_slowdown["factor"] == 2


def test_a_tls_server_that_does_not_agree_to_h2_is_refused(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TLS server speaking HTTP/1.1 (ALPN without h2): UNAVAILABLE in one line, at once."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    listener = socket.create_server(("127.0.0.1", 0))

    def accept_one() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except OSError:
            pass  # the client hung up after the handshake, as it should

    threading.Thread(target=accept_one, daemon=True).start()
    with pytest.raises(CallError) as failure:
        Call(f"127.0.0.1:{listener.getsockname()[1]}", "/m", b"", timeout=10, settings=ClientSettings(tls_ca=str(cert)))
    listener.close()
    assert failure.value.code == "UNAVAILABLE" and "no ALPN h2" in failure.value.details
