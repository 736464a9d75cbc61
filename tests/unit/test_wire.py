"""stream-logs' HTTP/2 framing (hodei_stream/stream/wire.py) against a peer that writes
crafted frames on a real Unix socket: padding, CONTINUATION, PING, SETTINGS, trailers-only
answers, resets, GOAWAY and a connection that drops."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import hpack
import pytest

from hodei_stream.stream import wire
from hodei_stream.stream.wire import Call, CallError, frame

OK_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]


def message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def headers_frames(headers: list[tuple[str, str]], flags: int = 0) -> bytes:
    return frame(wire.HEADERS, wire.END_HEADERS | flags, 1, hpack.Encoder().encode(headers))


class Peer:
    """Accepts one connection, writes ``script`` once the client's first bytes came, then
    keeps what the client sends until it closes (to check its answers)."""

    def __init__(self, path: Path, script: bytes, close_after: bool = False) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.listener.settimeout(10)
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, args=(script, close_after), daemon=True)
        self.thread.start()

    def _serve(self, script: bytes, close_after: bool) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        with conn:
            self.received += conn.recv(65536)
            conn.sendall(script)
            if close_after:
                return
            while chunk := conn.recv(65536):
                self.received += chunk


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "peer.sock"


def call(path: Path) -> Call:
    return Call(f"unix:{path}", "/hodei.LogStreamService/SubscribeLogs", b"request", timeout=10)


def test_padding_continuation_ping_and_settings(socket_path: Path) -> None:
    block = hpack.Encoder().encode([*OK_HEADERS, ("x-hodei-sequences", "exact")])
    padded_priority_headers = frame(wire.HEADERS, wire.PADDED | wire.PRIORITY, 1, b"\x02" + b"\x00" * 5 + block[:3] + b"\x00\x00")
    continuation = frame(wire.CONTINUATION, wire.END_HEADERS, 1, block[3:])
    first, second = message(b"one"), message(b"two" * 10)
    data = first + second
    script = (
        frame(wire.SETTINGS, 0, 0)
        + padded_priority_headers
        + continuation
        + frame(wire.PING, 0, 0, b"12345678")
        + frame(wire.DATA, wire.PADDED, 1, b"\x03" + data[:10] + b"\x00" * 3)  # a message cut in two frames
        + frame(wire.DATA, 0, 1, data[10:])
        + headers_frames([("grpc-status", "0")], wire.END_STREAM)
    )
    peer = Peer(socket_path, script)
    answer = call(socket_path)
    assert ("x-hodei-sequences", "exact") in answer.initial_metadata()
    assert [m for batch in answer.batches() for m in batch] == [b"one", b"two" * 10]
    peer.thread.join(10)
    assert frame(wire.SETTINGS, wire.ACK, 0) in peer.received
    assert frame(wire.PING, wire.ACK, 0, b"12345678") in peer.received
    assert peer.received.startswith(wire.PREFACE)


@pytest.mark.parametrize(
    ("script", "code", "details"),
    [
        (headers_frames([*OK_HEADERS, ("grpc-status", "5"), ("grpc-message", "no%20job%20x")], wire.END_STREAM), "NOT_FOUND", "no job x"),
        (headers_frames(OK_HEADERS) + frame(wire.RST_STREAM, 0, 1, (2).to_bytes(4, "big")), "INTERNAL", "stream reset by the server (HTTP/2 error 2)"),
        (frame(wire.GOAWAY, 0, 0, (0).to_bytes(4, "big") + (0).to_bytes(4, "big")), "UNAVAILABLE", "the server is going away"),
        (headers_frames([(":status", "404")], wire.END_STREAM), "UNIMPLEMENTED", "HTTP status 404: not a gRPC server"),
        (headers_frames(OK_HEADERS) + frame(wire.DATA, wire.END_STREAM, 1, message(b"x")), "INTERNAL", "the server ended the call without a status"),
    ],
    ids=["trailers-only", "reset", "goaway", "not-grpc", "no-status"],
)
def test_failures(socket_path: Path, script: bytes, code: str, details: str) -> None:
    Peer(socket_path, script)
    with pytest.raises(CallError) as failure:
        for _ in call(socket_path).batches():
            pass
    assert (failure.value.code, failure.value.details) == (code, details)


def test_a_dropped_connection_is_unavailable_after_what_came(socket_path: Path) -> None:
    Peer(socket_path, headers_frames(OK_HEADERS) + frame(wire.DATA, 0, 1, message(b"kept") + b"\x00\x00"), close_after=True)
    received: list[bytes] = []
    with pytest.raises(CallError) as failure:
        for batch in call(socket_path).batches():
            received += batch
    assert received == [b"kept"]
    assert failure.value.code == "UNAVAILABLE"


def test_nobody_listening_is_unavailable(socket_path: Path) -> None:
    with pytest.raises(CallError) as failure:
        call(socket_path)
    assert failure.value.code == "UNAVAILABLE" and "failed to connect" in failure.value.details
