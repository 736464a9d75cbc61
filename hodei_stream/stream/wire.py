"""gRPC calls over HTTP/2, framed by hand on a plain socket: stream-logs' transport.

Why not grpcio here: its Python iterator costs ~25 µs per message (locks, a condition
variable and a completion-queue event each), a ceiling near 40k lines/s, and ``import grpc``
alone costs ~100 ms of start-up.  Why not the h2 library either: it spends ~30 µs on each
HTTP/2 frame (it formats every frame for a debug log nobody reads), and a server that sends
one message per frame (as grpc's C++ server does) then caps the stream near 30k lines/s.
What a client of one call needs from HTTP/2 is small: frames are a 9-byte header and a
payload; response headers are decoded with ``hpack``; flow control is a WINDOW_UPDATE now
and then.  That costs a couple of µs per frame.

Only what stream-logs needs: unary and server-streaming calls, each on a connection of its
own (so threads never share one), over a Unix socket or TCP, plaintext or TLS
(``HODEI_TLS_CA``), with a bearer token (``HODEI_TOKEN``).
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterator

import hpack

from hodei_stream.endpoint import MAX_MESSAGE_BYTES
from hodei_stream.state_folder import ENV_TLS_CA, ENV_TOKEN

CONNECT_TIMEOUT_S = 10.0
RECEIVE_CHUNK = 1 << 20
# How much the server may send ahead of our reading; topped up once half is used.
WINDOW_BYTES = 16 * 1024 * 1024
STREAM_ID = 1  # the one stream of the connection
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Frame types and flags (RFC 9113, section 6).
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_ENABLE_PUSH = 0x2
STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)  # fmt: skip


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(0x8, 0, stream_id, increment.to_bytes(4, "big"))


class CallError(Exception):
    """A call that did not end OK: its gRPC status code name and details."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


def _connect(target: str, timeout: float) -> tuple[socket.socket, str, bool]:
    """A connected socket for ``unix:/path`` or ``host:port``, its authority, and whether
    the way there is private (a Unix socket, loopback, or TLS): where a token may go."""
    try:
        if target.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(target.removeprefix("unix:"))
            return sock, "localhost", True
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ca_path = os.environ.get(ENV_TLS_CA)
        if ca_path:
            context = ssl.create_default_context(cafile=ca_path)
            context.set_alpn_protocols(["h2"])
            return context.wrap_socket(sock, server_hostname=host), target, True
        return sock, target, host in ("localhost", "127.0.0.1", "::1")
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise CallError("UNAVAILABLE", f"failed to connect to {target}: {reason}") from None


class Call:
    """One gRPC call on an HTTP/2 connection of its own.

    ``batches()`` yields the response messages' bytes as they are read; the call's status
    comes at the end: a status other than OK, or a connection that closed first, raises
    ``CallError``.  ``close()`` may be called from another thread to stop a reader.
    """

    def __init__(self, target: str, method: str, request: bytes, timeout: float | None = None) -> None:
        self._sock, authority, private = _connect(target, CONNECT_TIMEOUT_S)
        self._sock.settimeout(timeout)
        self._closed = threading.Event()
        headers = [
            (":method", "POST"),
            (":scheme", "https" if isinstance(self._sock, ssl.SSLSocket) else "http"),
            (":path", method),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        if token := os.environ.get(ENV_TOKEN):
            if not private:
                self.close()
                raise CallError("UNAUTHENTICATED", f"{ENV_TOKEN} is only sent over TLS ({ENV_TLS_CA}) or to this machine")
            headers.append(("authorization", f"Bearer {token}"))
        # Never indexed: the server's header table is then never ours to keep in step.
        block = hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(name, value) for name, value in headers])
        message = b"\x00" + len(request).to_bytes(4, "big") + request
        self._send(
            PREFACE
            + frame(SETTINGS, 0, 0, SETTINGS_ENABLE_PUSH.to_bytes(2, "big") + (0).to_bytes(4, "big"))
            + window_update(0, WINDOW_BYTES)
            + frame(HEADERS, END_HEADERS, STREAM_ID, block)
            + window_update(STREAM_ID, WINDOW_BYTES)
            + frame(DATA, END_STREAM, STREAM_ID, message)
        )
        self._decoder = hpack.Decoder()
        self._incoming = bytearray()  # received bytes not yet parsed into frames
        self._header_block: bytearray | None = None  # a header block awaiting its CONTINUATIONs
        self._header_block_ends_stream = False
        self._unacknowledged = 0  # bytes of DATA read since our last WINDOW_UPDATE
        self._buffer = bytearray()  # the stream's DATA: length-prefixed gRPC messages
        self._metadata: list[tuple[str, str]] | None = None
        self._status: tuple[str, str] | None = None  # (code name, details) once known

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in recv
            except OSError:
                pass
            self._sock.close()

    def initial_metadata(self) -> list[tuple[str, str]]:
        """The response headers, waiting for them if need be (empty if the call failed)."""
        while self._metadata is None and self._status is None:
            self._receive()
        return self._metadata or []

    def batches(self) -> Iterator[list[bytes]]:
        """Response messages as they are read: each list holds those that came in together."""
        try:
            while True:
                buffer = self._buffer
                batch = []
                start = 0
                while len(buffer) - start >= 5:
                    size = int.from_bytes(buffer[start + 1 : start + 5], "big")
                    end = start + 5 + size
                    if len(buffer) < end:
                        break
                    batch.append(bytes(buffer[start + 5 : end]))
                    start = end
                del buffer[:start]
                if batch:
                    yield batch
                if self._status is not None:
                    break
                self._receive()
            code, details = self._status
            if code != "OK":
                raise CallError(code, details)
            if self._buffer:
                raise CallError("INTERNAL", "the server ended the call in the middle of a message")
        finally:
            self.close()

    def unary(self) -> bytes:
        """The one response message of a unary call."""
        responses = [message for batch in self.batches() for message in batch]
        if len(responses) != 1:
            raise CallError("INTERNAL", f"a unary call answered {len(responses)} messages")
        return responses[0]

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as error:
            self._fail("UNAVAILABLE", f"connection lost ({error.strerror or error})")

    def _fail(self, code: str, details: str) -> None:
        if self._status is None:
            self._status = (code, details)
        self.close()

    def _receive(self) -> None:
        """Read what the server sent next and act on it (blocks until something comes)."""
        if self._closed.is_set():
            self._fail("CANCELLED", "the call was closed")
            return
        try:
            data = self._sock.recv(RECEIVE_CHUNK)
        except TimeoutError:
            self._fail("DEADLINE_EXCEEDED", "no answer in time")
            return
        except OSError as error:
            self._fail("CANCELLED" if self._closed.is_set() else "UNAVAILABLE", f"connection lost ({error.strerror or error})")
            return
        if not data:
            self._fail("CANCELLED" if self._closed.is_set() else "UNAVAILABLE", "the server closed the connection")
            return
        incoming = self._incoming
        incoming += data
        start = 0
        while len(incoming) - start >= 9 and self._status is None:
            length = int.from_bytes(incoming[start : start + 3], "big")
            end = start + 9 + length
            if len(incoming) < end:
                break
            kind, flags = incoming[start + 3], incoming[start + 4]
            stream_id = int.from_bytes(incoming[start + 5 : start + 9], "big") & 0x7FFFFFFF
            self._on_frame(kind, flags, stream_id, memoryview(incoming)[start + 9 : end])
            start = end
        del incoming[:start]
        if self._unacknowledged >= WINDOW_BYTES // 2:
            self._send(window_update(0, self._unacknowledged) + window_update(STREAM_ID, self._unacknowledged))
            self._unacknowledged = 0

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: memoryview) -> None:
        if kind == DATA and stream_id == STREAM_ID:
            self._unacknowledged += len(payload)
            if flags & PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            self._buffer += payload
            if len(self._buffer) > MAX_MESSAGE_BYTES + 5:
                self._fail("RESOURCE_EXHAUSTED", "a message larger than 64 MiB")
            elif flags & END_STREAM and self._status is None:
                self._status = ("INTERNAL", "the server ended the call without a status")
        elif kind in (HEADERS, CONTINUATION) and stream_id == STREAM_ID:
            if kind == HEADERS:
                if flags & PADDED:
                    payload = payload[1 : len(payload) - payload[0]]
                if flags & PRIORITY:
                    payload = payload[5:]
                self._header_block = bytearray()
                self._header_block_ends_stream = bool(flags & END_STREAM)
            if self._header_block is None:
                self._fail("UNAVAILABLE", "not an HTTP/2 gRPC server (a stray CONTINUATION frame)")
                return
            self._header_block += payload
            if flags & END_HEADERS:
                self._on_headers(self._decoder.decode(bytes(self._header_block)), self._header_block_ends_stream)
                self._header_block = None
        elif kind == SETTINGS and not flags & ACK:
            self._send(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            self._send(frame(PING, ACK, 0, bytes(payload)))
        elif kind == RST_STREAM and stream_id == STREAM_ID:
            code = int.from_bytes(payload[:4], "big")
            self._fail("CANCELLED" if code == 8 else "INTERNAL", f"stream reset by the server (HTTP/2 error {code})")
        elif kind == GOAWAY and int.from_bytes(payload[:4], "big") & 0x7FFFFFFF < STREAM_ID:
            self._fail("UNAVAILABLE", "the server is going away")
        # Anything else (WINDOW_UPDATE, PRIORITY, unknown types) asks nothing of a reader.

    def _on_headers(self, headers: list[tuple[str, str]], ends_stream: bool) -> None:
        fields = dict(headers)
        if self._metadata is None:
            self._metadata = list(headers)
            status = fields.get(":status", "200")
            if status != "200":
                self._fail("UNAVAILABLE" if status in ("502", "503", "504") else "UNIMPLEMENTED",
                           f"HTTP status {status}: not a gRPC server")
                return
            if "grpc-status" not in fields and not ends_stream:
                return  # the response's headers; the status comes with the trailers
        if "grpc-status" not in fields:
            self._fail("INTERNAL", "the server ended the call without a status")
            return
        number = int(fields["grpc-status"]) if fields["grpc-status"].isdigit() else 2
        code = STATUS_NAMES[number] if number < len(STATUS_NAMES) else "UNKNOWN"
        message = fields.get("grpc-message", "")
        if "%" in message:  # percent-encoded on the wire; rare enough to import for
            from urllib.parse import unquote

            message = unquote(message)
        self._status = (code, message or code.lower())
