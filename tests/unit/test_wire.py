"""stream-logs' HTTP/2 framing (hodei_stream/stream/wire.py) against a peer that writes
crafted frames on a real Unix socket: padding, CONTINUATION, PING, SETTINGS, trailers-only
answers, resets, GOAWAY and a connection that drops."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import hpack
import pytest

from hodei_stream.endpoint import ClientSettings, Route
from hodei_stream.stream import http2, wire
from hodei_stream.stream.http2 import frame
from hodei_stream.stream.wire import Call, CallError

OK_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]


def message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def headers_frames(headers: list[tuple[str, str]], flags: int = 0) -> bytes:
    return frame(http2.HEADERS, http2.END_HEADERS | flags, 1, hpack.Encoder().encode(headers))


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
    return tmp_path / "peer.sock"


def call(path: Path) -> Call:
    return Call(f"unix:{path}", "/hodei.LogStreamService/SubscribeLogs", b"request", timeout=10)


def test_padding_continuation_ping_and_settings(socket_path: Path) -> None:
    block = hpack.Encoder().encode([*OK_HEADERS, ("x-hodei-sequences", "exact")])
    padded_priority_headers = frame(
        http2.HEADERS, http2.PADDED | http2.PRIORITY, 1, b"\x02" + b"\x00" * 5 + block[:3] + b"\x00\x00"
    )
    continuation = frame(http2.CONTINUATION, http2.END_HEADERS, 1, block[3:])
    first, second = message(b"one"), message(b"two" * 10)
    data = first + second
    script = (
        frame(http2.SETTINGS, 0, 0)
        + padded_priority_headers
        + continuation
        + frame(http2.PING, 0, 0, b"12345678")
        + frame(http2.DATA, http2.PADDED, 1, b"\x03" + data[:10] + b"\x00" * 3)  # a message cut in two frames
        + frame(http2.DATA, 0, 1, data[10:])
        + headers_frames([("grpc-status", "0")], http2.END_STREAM)
    )
    peer = Peer(socket_path, script)
    answer = call(socket_path)
    assert ("x-hodei-sequences", "exact") in answer.initial_metadata()
    assert [m for batch in answer.message_batches() for m in batch] == [b"one", b"two" * 10]
    peer.thread.join(10)
    assert frame(http2.SETTINGS, http2.ACK, 0) in peer.received
    assert frame(http2.PING, http2.ACK, 0, b"12345678") in peer.received
    assert peer.received.startswith(http2.PREFACE)


@pytest.mark.parametrize(
    ("script", "code", "details"),
    [
        (
            headers_frames([*OK_HEADERS, ("grpc-status", "5"), ("grpc-message", "no%20job%20x")], http2.END_STREAM),
            "NOT_FOUND",
            "no job x",
        ),
        (
            headers_frames(OK_HEADERS) + frame(http2.RST_STREAM, 0, 1, (2).to_bytes(4, "big")),
            "INTERNAL",
            "stream reset by the server (HTTP/2 error 2)",
        ),
        (
            frame(http2.GOAWAY, 0, 0, (0).to_bytes(4, "big") + (0).to_bytes(4, "big")),
            "UNAVAILABLE",
            "the server is going away (HTTP/2 error 0)",
        ),
        (headers_frames([(":status", "404")], http2.END_STREAM), "UNIMPLEMENTED", "HTTP status 404: not a gRPC answer"),
        (
            headers_frames(OK_HEADERS) + frame(http2.DATA, http2.END_STREAM, 1, message(b"x")),
            "INTERNAL",
            "the server ended the call without a status",
        ),
    ],
    ids=["trailers-only", "reset", "goaway", "not-grpc", "no-status"],
)
def test_failures(socket_path: Path, script: bytes, code: str, details: str) -> None:
    Peer(socket_path, script)
    with pytest.raises(CallError) as failure:
        for _ in call(socket_path).message_batches():
            pass
    assert (failure.value.code, failure.value.details) == (code, details)


def test_a_dropped_connection_is_unavailable_after_what_came(socket_path: Path) -> None:
    Peer(
        socket_path,
        headers_frames(OK_HEADERS) + frame(http2.DATA, 0, 1, message(b"kept") + b"\x00\x00"),
        close_after=True,
    )
    received: list[bytes] = []

    def read_all() -> None:
        for batch in call(socket_path).message_batches():
            received.extend(batch)

    with pytest.raises(CallError) as failure:
        read_all()
    assert received == [b"kept"]
    assert failure.value.code == "UNAVAILABLE"


def test_nobody_listening_is_unavailable(socket_path: Path) -> None:
    with pytest.raises(CallError) as failure:
        call(socket_path)
    assert failure.value.code == "UNAVAILABLE" and "failed to connect" in failure.value.details


# --- To the spec: HTTP status mapping, resets, compression, bounds, keepalive, deadline ---


class Responder:
    """Accepts one connection and runs ``serve(conn)`` on it in a thread: a peer that can
    answer what the client sends (PINGs) or stream a large script lazily."""

    def __init__(self, path: Path, serve: Callable[[socket.socket], None]) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.listener.settimeout(10)
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, args=(serve,), daemon=True)
        self.thread.start()

    def _serve(self, serve: Callable[[socket.socket], None]) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        with conn:
            try:
                serve(conn)
            except OSError:
                pass  # the client hung up first: what a failing call does


def client_frames(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """The (type, flags, stream, payload) of each complete frame the client sent."""
    data = data.removeprefix(http2.PREFACE)
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        if len(data) < 9 + length:
            return
        yield data[3], data[4], int.from_bytes(data[5:9], "big"), data[9 : 9 + length]
        data = data[9 + length :]


def answer_pings(conn: socket.socket, until: float, received: bytearray) -> None:
    """Read what the client sends until ``until`` (monotonic), acknowledging its PINGs."""
    acknowledged = 0
    while (left := until - time.monotonic()) > 0:
        conn.settimeout(left)
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            return
        if not chunk:
            return
        received += chunk
        pings = [
            payload
            for kind, flags, _, payload in client_frames(bytes(received))
            if kind == http2.PING and not flags & http2.ACK
        ]
        for payload in pings[acknowledged:]:
            conn.sendall(frame(http2.PING, http2.ACK, 0, payload))
        acknowledged = len(pings)


def failure_of(path: Path, **options: float) -> CallError:
    with pytest.raises(CallError) as failure:
        for _ in Call(f"unix:{path}", "/hodei.LogStreamService/SubscribeLogs", b"request", **options).message_batches():
            pass
    return failure.value


def reset(code: int) -> bytes:
    return headers_frames(OK_HEADERS) + frame(http2.RST_STREAM, 0, 1, code.to_bytes(4, "big"))


@pytest.mark.parametrize(
    ("script", "code", "details"),
    [
        *[
            (
                headers_frames([(":status", status), ("content-type", "text/html")], http2.END_STREAM),
                code,
                f"HTTP status {status}: not a gRPC answer",
            )
            for status, code in [
                ("400", "INTERNAL"),
                ("401", "UNAUTHENTICATED"),
                ("403", "PERMISSION_DENIED"),
                ("404", "UNIMPLEMENTED"),
                ("429", "UNAVAILABLE"),
                ("502", "UNAVAILABLE"),
                ("503", "UNAVAILABLE"),
                ("504", "UNAVAILABLE"),
                ("500", "UNKNOWN"),
                ("302", "UNKNOWN"),
            ]
        ],
        (
            headers_frames([(":status", "503"), ("grpc-status", "5"), ("grpc-message", "gone")], http2.END_STREAM),
            "NOT_FOUND",
            "gone",
        ),
        (
            headers_frames([(":status", "502")]) + frame(http2.DATA, 0, 1, b"<html>bad gateway"),
            "UNAVAILABLE",
            "HTTP status 502: not a gRPC answer",
        ),
        (reset(http2.REFUSED_STREAM), "UNAVAILABLE", "stream reset by the server (HTTP/2 error 7)"),
        (reset(http2.CANCEL), "CANCELLED", "the server cancelled the call (RST_STREAM CANCEL)"),
        (reset(http2.ENHANCE_YOUR_CALM), "RESOURCE_EXHAUSTED", "stream reset by the server (HTTP/2 error 11)"),
        (
            frame(http2.GOAWAY, 0, 0, (0).to_bytes(4, "big") + (11).to_bytes(4, "big") + b"too_many_pings"),
            "UNAVAILABLE",
            "the server is going away (HTTP/2 error 11: too_many_pings)",
        ),
        (
            frame(http2.HEADERS, http2.END_HEADERS, 1, b"\xff\xff\xff\xff\xff"),
            "INTERNAL",
            "the server's headers do not decode (HPACK: ",
        ),
        (
            frame(http2.HEADERS, http2.END_HEADERS, 1, b"\x3f\xff\xff\xff\x0f"),
            "INTERNAL",
            "the server's headers do not decode (HPACK: ",
        ),
        (
            frame(http2.DATA, 0, 1, message(b"x")),
            "INTERNAL",
            "HTTP/2 protocol error from the server: DATA before the response headers",
        ),
        (
            frame(http2.CONTINUATION, http2.END_HEADERS, 1, b""),
            "INTERNAL",
            "HTTP/2 protocol error from the server: a CONTINUATION frame without HEADERS",
        ),
        (
            frame(http2.HEADERS, 0, 1, b"") + frame(http2.PING, 0, 0, b"12345678"),
            "INTERNAL",
            "HTTP/2 protocol error from the server: a header block interrupted by another frame",
        ),
        (
            b"\x01\x00\x00" + bytes((http2.DATA, 0)) + (1).to_bytes(4, "big"),
            "INTERNAL",
            "HTTP/2 protocol error from the server: a frame of 65536 bytes, above 16384",
        ),
        (
            frame(http2.HEADERS, http2.PADDED | http2.END_HEADERS, 1, b"\x09abc"),
            "INTERNAL",
            "HTTP/2 protocol error from the server: padding longer than its frame",
        ),
        (
            frame(http2.SETTINGS, 0, 0, b"\x00\x05\x00\x00\x00\x01"),
            "INTERNAL",
            "HTTP/2 protocol error from the server: SETTINGS_MAX_FRAME_SIZE 1",
        ),
        (
            frame(http2.PUSH_PROMISE, http2.END_HEADERS, 1, b"\x00\x00\x00\x02"),
            "INTERNAL",
            "HTTP/2 protocol error from the server: PUSH_PROMISE, though we disabled push",
        ),
        (
            frame(http2.WINDOW_UPDATE, 0, 0, (0).to_bytes(4, "big")),
            "INTERNAL",
            "HTTP/2 protocol error from the server: a WINDOW_UPDATE of 0",
        ),
        (
            headers_frames([*OK_HEADERS, ("grpc-status", "13"), ("grpc-message", "two%0Alines")], http2.END_STREAM),
            "INTERNAL",
            "two lines",
        ),
    ],
)
def test_spec_failures(socket_path: Path, script: bytes, code: str, details: str) -> None:
    Peer(socket_path, script)
    failure = failure_of(socket_path, timeout=10)
    assert failure.code == code and failure.details.startswith(details), failure
    assert "\n" not in failure.details


def gzip_message(payload: bytes, encoder: Callable[[bytes], bytes]) -> bytes:
    compressed = encoder(payload)
    return b"\x01" + len(compressed).to_bytes(4, "big") + compressed


@pytest.mark.parametrize(("encoding", "encoder"), [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_compressed_messages_are_decoded(socket_path: Path, encoding: str, encoder: Callable[[bytes], bytes]) -> None:
    data = gzip_message(b"one" * 100, encoder) + message(b"two") + gzip_message(b"", encoder)
    Peer(
        socket_path,
        headers_frames([*OK_HEADERS, ("grpc-encoding", encoding)])
        + frame(http2.DATA, 0, 1, data)
        + headers_frames([("grpc-status", "0")], http2.END_STREAM),
    )
    answer = call(socket_path)
    assert [m for batch in answer.message_batches() for m in batch] == [b"one" * 100, b"two", b""]


@pytest.mark.parametrize(
    ("encoding", "body", "code", "details"),
    [
        (
            None,
            gzip_message(b"x", gzip.compress),
            "INTERNAL",
            "a compressed message with grpc-encoding 'identity': cannot decode it",
        ),
        (
            "snappy",
            gzip_message(b"x", gzip.compress),
            "INTERNAL",
            "a compressed message with grpc-encoding 'snappy': cannot decode it",
        ),
        ("gzip", b"\x01\x00\x00\x00\x04junk", "INTERNAL", "a gzip message that does not decode"),
        ("gzip", gzip_message(b"x" * 1000, gzip.compress)[:-6], "INTERNAL", "a truncated gzip message"),
    ],
    ids=["identity", "unknown", "corrupt", "truncated"],
)
def test_undecodable_compressed_messages(
    socket_path: Path, encoding: str | None, body: bytes, code: str, details: str
) -> None:
    extra = [("grpc-encoding", encoding)] if encoding else []
    fixed = body[:1] + (len(body) - 5).to_bytes(4, "big") + body[5:]
    Peer(
        socket_path,
        headers_frames([*OK_HEADERS, *extra])
        + frame(http2.DATA, 0, 1, fixed)
        + headers_frames([("grpc-status", "0")], http2.END_STREAM),
    )
    failure = failure_of(socket_path, timeout=10)
    assert (failure.code, failure.details.startswith(details)) == (code, True), failure


def test_a_gzip_bomb_is_an_error_not_memory(socket_path: Path) -> None:
    """65 MiB of zeros in ~65 KB of gzip: refused at the 64 MiB message limit."""
    bomb = gzip_message(bytes(65 * 1024 * 1024), gzip.compress)
    data_frames = b"".join(frame(http2.DATA, 0, 1, bomb[i : i + 16384]) for i in range(0, len(bomb), 16384))
    Peer(
        socket_path,
        headers_frames([*OK_HEADERS, ("grpc-encoding", "gzip")])
        + data_frames
        + headers_frames([("grpc-status", "0")], http2.END_STREAM),
    )
    failure = failure_of(socket_path, timeout=20)
    assert (failure.code, failure.details) == (
        "RESOURCE_EXHAUSTED",
        "a compressed message larger than 64 MiB once decoded",
    )


def test_a_continuation_flood_is_cut_at_64_kib(socket_path: Path) -> None:
    """100 MB of CONTINUATION frames: the call fails after 64 KiB, its memory stays small."""

    def flood(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(frame(http2.HEADERS, 0, 1, b"\x88"))
        chunk = frame(http2.CONTINUATION, 0, 1, b"\x00" * 16384) * 64
        for _ in range(100):
            conn.sendall(chunk)

    Responder(socket_path, flood)
    tracemalloc.start()
    try:
        failure = failure_of(socket_path, timeout=20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (failure.code, failure.details) == ("INTERNAL", "the server's header block is larger than 64 KiB")
    assert peak < 8 * 1024 * 1024, peak


def test_a_silent_path_ends_unavailable_after_one_unanswered_ping(socket_path: Path) -> None:
    def silent(conn: socket.socket) -> None:
        conn.sendall(headers_frames(OK_HEADERS))
        time.sleep(5)  # reads nothing, answers nothing: a black hole

    Responder(socket_path, silent)
    started = time.monotonic()
    failure = failure_of(socket_path, keepalive_time=0.3, keepalive_timeout=0.4)
    elapsed = time.monotonic() - started
    assert (failure.code, failure.details) == ("UNAVAILABLE", "no answer to a keepalive ping within 0.4 s")
    assert 0.6 <= elapsed < 3, elapsed


def test_an_answered_ping_keeps_a_quiet_call_alive(socket_path: Path) -> None:
    received = bytearray()

    def quiet(conn: socket.socket) -> None:
        conn.sendall(headers_frames(OK_HEADERS))
        answer_pings(conn, time.monotonic() + 1.5, received)
        conn.sendall(
            frame(http2.DATA, 0, 1, message(b"late")) + headers_frames([("grpc-status", "0")], http2.END_STREAM)
        )
        answer_pings(conn, time.monotonic() + 1, received)

    Responder(socket_path, quiet)
    answer = Call(f"unix:{socket_path}", "/m", b"", keepalive_time=0.2, keepalive_timeout=0.5)
    assert [m for batch in answer.message_batches() for m in batch] == [b"late"]
    pings = [payload for kind, flags, _, payload in client_frames(bytes(received)) if kind == http2.PING]
    assert len(pings) >= 3  # one every 0.2 s of silence over 1.5 s, each answered


def test_a_unary_deadline_covers_the_whole_call_and_is_sent(socket_path: Path) -> None:
    received = bytearray()
    Responder(socket_path, lambda conn: answer_pings(conn, time.monotonic() + 5, received))
    started = time.monotonic()
    with pytest.raises(CallError) as failure:
        Call(f"unix:{socket_path}", "/m", b"", timeout=0.8, keepalive_time=0.2).unary()
    elapsed = time.monotonic() - started
    assert (failure.value.code, failure.value.details) == ("DEADLINE_EXCEEDED", "no answer within the call's deadline")
    assert 0.7 <= elapsed < 3, elapsed
    block = next(payload for kind, _, _, payload in client_frames(bytes(received)) if kind == http2.HEADERS)
    sent = dict(hpack.Decoder().decode(block))
    assert sent["grpc-timeout"] == "800m"
    assert sent["grpc-accept-encoding"] == "identity,deflate,gzip"


@pytest.mark.parametrize(
    ("seconds", "text"), [(15, "15000m"), (0.0001, "1m"), (200_000, "200000S"), (1e9, "16666667M"), (1e12, "99999999H")]
)
def test_grpc_timeout_format(seconds: float, text: str) -> None:
    assert wire.grpc_timeout(seconds) == text


def test_the_request_waits_for_the_peers_window(socket_path: Path) -> None:
    """A request above the 65,535-byte initial window goes out in frames of the peer's
    size, the rest only once the peer opens its windows."""
    request = bytes(range(256)) * 400  # 102,400 bytes + the 5-byte prefix
    received = bytearray()

    def slow_reader(conn: socket.socket) -> None:
        answer_pings(conn, time.monotonic() + 0.5, received)
        before = sum(len(p) for kind, _, _, p in client_frames(bytes(received)) if kind == http2.DATA)
        conn.sendall(
            frame(http2.SETTINGS, 0, 0, b"\x00\x05\x00\x00\x80\x00")
            + http2.window_update(0, 100_000)
            + http2.window_update(1, 100_000)
        )
        answer_pings(conn, time.monotonic() + 0.5, received)
        conn.sendall(headers_frames([*OK_HEADERS, ("grpc-status", "0"), ("x-before", str(before))], http2.END_STREAM))

    Responder(socket_path, slow_reader)
    answer = Call(f"unix:{socket_path}", "/m", request)
    before = int(dict(answer.initial_metadata())["x-before"])
    list(answer.message_batches())
    sizes = [len(p) for kind, _, _, p in client_frames(bytes(received)) if kind == http2.DATA]
    assert before == 65_535 and sum(sizes) == len(request) + 5
    assert (
        sum(sizes[:4]) == 65_535 and max(sizes[:4]) == 16_384 and max(sizes[4:]) == 32_768
    )  # the peer's size, once said


def test_answered_within_tells_a_call_that_hangs_without_headers(socket_path: Path) -> None:
    def hangs(conn: socket.socket) -> None:
        time.sleep(3)  # reads the request, answers nothing (the platform with a full buffer)

    Responder(socket_path, hangs)
    hanging = Call(f"unix:{socket_path}", "/m", b"")
    started = time.monotonic()
    assert not hanging.answered_within(0.3)
    assert 0.3 <= time.monotonic() - started < 2
    hanging.close()


def test_answered_within_is_true_once_the_headers_came(tmp_path: Path) -> None:
    Peer(tmp_path / "peer.sock", headers_frames(OK_HEADERS) + headers_frames([("grpc-status", "0")], http2.END_STREAM))
    answer = call(tmp_path / "peer.sock")
    assert answer.answered_within(5)
    assert answer.initial_metadata()[:1] == OK_HEADERS[:1]
    assert list(answer.message_batches()) == []


def test_watchdog_ticks_in_silences_and_keepalive_pings_go_on(
    socket_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(wire.keepalive_slowdown, "factor", 1)  # another test's GOAWAY may have raised it
    received = bytearray()

    def quiet(conn: socket.socket) -> None:
        conn.sendall(headers_frames(OK_HEADERS) + frame(http2.DATA, 0, 1, message(b"first")))
        answer_pings(conn, time.monotonic() + 1.2, received)
        conn.sendall(
            frame(http2.DATA, 0, 1, message(b"late")) + headers_frames([("grpc-status", "0")], http2.END_STREAM)
        )
        answer_pings(conn, time.monotonic() + 1, received)

    Responder(socket_path, quiet)
    answer = Call(f"unix:{socket_path}", "/m", b"", keepalive_time=0.3, keepalive_timeout=0.5)
    batches = list(answer.message_batches(idle_s=0.1))
    assert batches[0] == [b"first"] and batches[-1] == [b"late"]
    assert all(batch == [] for batch in batches[1:-1])
    assert len(batches) - 2 >= 5  # ~one tick per 0.1 s of silence (a PING's answer is not silence)
    pings = [payload for kind, flags, _, payload in client_frames(bytes(received)) if kind == http2.PING]
    assert len(pings) >= 2  # one per 0.3 s of silence: ticks do not postpone them


def test_too_many_pings_is_marked_on_the_call(socket_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(wire.keepalive_slowdown, "factor", 1)
    goaway = frame(http2.GOAWAY, 0, 0, (1).to_bytes(4, "big") + (11).to_bytes(4, "big") + b"too_many_pings")
    Peer(socket_path, headers_frames(OK_HEADERS) + goaway, close_after=True)
    answer = call(socket_path)
    with pytest.raises(CallError) as failure:
        list(answer.message_batches())
    assert failure.value.code == "UNAVAILABLE"
    assert answer.pings_refused
    assert wire.keepalive_slowdown["factor"] == 2


def test_one_route_decides_tls_and_where_the_token_may_go() -> None:
    token = ClientSettings(token="secret", tls_ca="/ca.pem")
    assert Route.to("unix:/run/h.sock", token) == ("/run/h.sock", "localhost", 0, None, "secret")  # no TLS in a socket
    for loopback in ("[::1]:50051", "127.0.0.2:50051", "LOCALHOST:50051"):  # the server's own loopback rule
        assert Route.to(loopback, ClientSettings(token="secret")).token_refused is None
    assert Route.to("remote:443", token).token_refused is None  # over TLS
    remote = Route.to("remote:50051", ClientSettings(token="secret"))
    assert remote.token_refused == "HODEI_TOKEN is only sent over TLS (HODEI_TLS_CA) or to this machine"
    assert remote.authorization == {"authorization": "Bearer secret"}
    assert "secret" not in repr(remote)
    assert Route.to("remote:50051", ClientSettings()).authorization == {}
