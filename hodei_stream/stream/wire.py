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
(``HODEI_TLS_CA``; the server must agree to ``h2`` by ALPN), with a bearer token
(``HODEI_TOKEN``).

To the gRPC-over-HTTP/2 spec (gRPC's PROTOCOL-HTTP2.md, RFC 9113), as a client of one
stream: whatever the peer sends ends in a message list or a ``CallError`` with a one-line
message, never another exception, and every size a peer controls is bounded (a frame:
16 KiB, our advertised default; a header block with its CONTINUATIONs and its decoded
list: 64 KiB; a message, compressed or not: ``MAX_MESSAGE_BYTES``).

- Liveness, as grpc-go's client keepalive: after ``KEEPALIVE_TIME_S`` (10 s) without any
  byte from the peer the call sends a PING; without an answer within
  ``KEEPALIVE_TIMEOUT_S`` (10 s) it ends UNAVAILABLE, so a dead path (no FIN, no RST) is
  noticed in at most 20 s and the follower reconnects.  ``HODEI_KEEPALIVE_S`` sets both
  (read at the command's edge, ``endpoint.ClientSettings``).
  A server that answers "too_many_pings" makes this process ping half as often from then on.
- Deadline: ``timeout`` bounds the whole call (connect, TLS and every read) on the
  monotonic clock and is sent as ``grpc-timeout``; past it the call ends DEADLINE_EXCEEDED.
- Compression: ``grpc-encoding`` gzip and deflate are decoded (``grpc-accept-encoding``
  says so); a compressed message under identity or an unknown encoding is INTERNAL.
- Without ``grpc-status`` (a proxy answering), the HTTP status becomes the gRPC code of
  gRPC's http-grpc-status-mapping.md; RST_STREAM codes map as PROTOCOL-HTTP2.md says.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import cast

import hpack

from hodei_stream.endpoint import MAX_MESSAGE_BYTES, ClientSettings
from hodei_stream.state_folder import ENV_TLS_CA, ENV_TOKEN
from hodei_stream.stream.http2 import (
    ACCEPTED_ENCODINGS,
    ACK,
    CANCEL,
    CONTINUATION,
    DATA,
    DEFAULT_WINDOW,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    GOAWAY,
    GRPC_CODE_NAMES,
    HEADERS,
    HTTP_STATUS_CODES,
    MAX_FRAME,
    MAX_HEADER_BLOCK,
    MAX_WINDOW,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    PUSH_PROMISE,
    RESET_CODES,
    RST_STREAM,
    SETTINGS,
    SETTINGS_ENABLE_PUSH,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_FRAME_SIZE,
    SETTINGS_MAX_HEADER_LIST_SIZE,
    STREAM_ID,
    WINDOW_BYTES,
    WINDOW_UPDATE,
    ZLIB_OR_GZIP,
    frame,
    window_update,
)

CONNECT_TIMEOUT_S = 10.0
# grpc-go's client keepalive, the defaults its users set: a PING after this long without
# a byte from the peer, and the call fails when that PING is not answered in time.
KEEPALIVE_TIME_S = 10.0
KEEPALIVE_TIMEOUT_S = 10.0
# A server that finds our PINGs too frequent says so (GOAWAY ENHANCE_YOUR_CALM with
# "too_many_pings": grpc-core servers after 3 PINGs without data between); as grpc-go does,
# every later call of this process then waits twice as long before its PING.
TOO_MANY_PINGS = b"too_many_pings"
keepalive_slowdown = {"factor": 1}
RECEIVE_CHUNK = 1 << 20


def grpc_timeout(seconds: float) -> str:
    """``seconds`` as a ``grpc-timeout`` value: at most 8 digits and a unit (PROTOCOL-HTTP2.md)."""
    for unit, per_second in (("m", 1000), ("S", 1), ("M", 1 / 60), ("H", 1 / 3600)):
        value = math.ceil(seconds * per_second)
        if value < 100_000_000:
            return f"{max(value, 1)}{unit}"
    return "99999999H"


class CallError(Exception):
    """A call that did not end OK: its gRPC status code name and details."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


def _connect(target: str, timeout: float, tls_ca: str | None) -> tuple[socket.socket, str, bool, bool]:
    """A connected socket for ``unix:/path`` or ``host:port``, its authority, whether the
    way there is private (a Unix socket, loopback, or TLS): where a token may go, and whether
    it is TLS."""
    give_up = time.monotonic() + timeout
    try:
        if target.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(target.removeprefix("unix:"))
            return sock, "localhost", True, False
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not tls_ca:
            return sock, target, host in ("localhost", "127.0.0.1", "::1"), False
        import ssl

        context = ssl.create_default_context(cafile=tls_ca)
        context.set_alpn_protocols(["h2"])
        sock.settimeout(max(give_up - time.monotonic(), 0.001))  # connect and handshake within ``timeout``
        tls = context.wrap_socket(sock, server_hostname=host)
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise CallError("UNAVAILABLE", f"failed to connect to {target}: {reason}") from None
    if tls.selected_alpn_protocol() != "h2":
        tls.close()
        raise CallError(
            "UNAVAILABLE", f"the TLS server at {target} does not speak HTTP/2 (no ALPN h2): not a gRPC server"
        )
    return tls, target, True, True


class Call:
    """One gRPC call on an HTTP/2 connection of its own.

    ``message_batches()`` yields the response messages' bytes as they are read; the call's status
    comes at the end: a status other than OK, or a connection that closed first, raises
    ``CallError``.  ``close()`` may be called from another thread to stop a reader.

    ``timeout``: seconds for the whole call (a deadline, sent as ``grpc-timeout``), none
    for a stream that lasts as long as the job.  ``keepalive_time`` / ``keepalive_timeout``:
    the silence before a PING and the wait for its answer (default ``settings.keepalive_s``,
    else ``KEEPALIVE_TIME_S`` / ``KEEPALIVE_TIMEOUT_S``).  ``settings``: the token, CA bundle
    and keepalive the command read from its environment (``endpoint.ClientSettings``).
    """

    def __init__(
        self,
        target: str,
        method: str,
        request: bytes,
        timeout: float | None = None,
        *,
        keepalive_time: float | None = None,
        keepalive_timeout: float | None = None,
        settings: ClientSettings = ClientSettings(),
    ) -> None:
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._keepalive_time = (keepalive_time or settings.keepalive_s or KEEPALIVE_TIME_S) * keepalive_slowdown[
            "factor"
        ]
        self._keepalive_timeout = keepalive_timeout or settings.keepalive_s or KEEPALIVE_TIMEOUT_S
        self._closed = threading.Event()
        self._sock, authority, private, tls = _connect(
            target, CONNECT_TIMEOUT_S if timeout is None else min(timeout, CONNECT_TIMEOUT_S), settings.tls_ca
        )
        self._decoder = hpack.Decoder(max_header_list_size=MAX_HEADER_BLOCK)
        self._incoming = bytearray()  # received bytes not yet parsed into frames
        self._header_block: bytearray | None = None  # a header block awaiting its CONTINUATIONs
        self._header_block_ends_stream = False
        self._unacknowledged = 0  # bytes of DATA read since our last WINDOW_UPDATE
        self._buffer = bytearray()  # the stream's DATA: length-prefixed gRPC messages
        self._metadata: list[tuple[str, str]] | None = None
        self._encoding = "identity"  # the response's grpc-encoding
        self._status: tuple[str, str] | None = None  # (code name, details) once known
        self._wait: float | None = None  # the socket's timeout now, changed only when it must
        self._ping_sent = False  # a keepalive PING is out, and nothing came since
        self._quiet_s = 0.0  # seconds of silence from the peer toward the next PING (or its failure)
        self._tick_at: float | None = None  # when a watchdog tick is due (monotonic), if one is asked for
        self._ticked = False  # _read returned because a tick was due
        self.pings_refused = False  # the server said "too_many_pings" (GOAWAY ENHANCE_YOUR_CALM)
        headers = [
            (":method", "POST"),
            (":scheme", "https" if tls else "http"),
            (":path", method),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-accept-encoding", ACCEPTED_ENCODINGS),
        ]
        if timeout is not None:
            headers.append(("grpc-timeout", grpc_timeout(timeout)))
        if token := settings.token:
            if not private:
                self.close()
                raise CallError(
                    "UNAUTHENTICATED", f"{ENV_TOKEN} is only sent over TLS ({ENV_TLS_CA}) or to this machine"
                )
            headers.append(("authorization", f"Bearer {token}"))
        # Never indexed: the server's header table is then never ours to keep in step.
        block = hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(name, value) for name, value in headers])
        our_settings = b"".join(
            key.to_bytes(2, "big") + value.to_bytes(4, "big")
            for key, value in ((SETTINGS_ENABLE_PUSH, 0), (SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BLOCK))
        )
        # What we may send is bounded by the peer's SETTINGS and windows (the defaults until
        # its SETTINGS come): the request goes out as they allow.
        self._peer_max_frame = MAX_FRAME
        self._peer_initial_window = DEFAULT_WINDOW
        self._send_window = DEFAULT_WINDOW  # the connection's
        self._stream_send_window = DEFAULT_WINDOW
        self._unsent = b"\x00" + len(request).to_bytes(4, "big") + request
        self._send(
            PREFACE
            + frame(SETTINGS, 0, 0, our_settings)
            + window_update(0, WINDOW_BYTES)
            + frame(HEADERS, END_HEADERS, STREAM_ID, block)
            + window_update(STREAM_ID, WINDOW_BYTES)
            + self._request_frames()
        )

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

    def answered_within(self, seconds: float) -> bool:
        """Whether the server answered (its headers, or the call's end) within ``seconds``;
        ``initial_metadata()`` then returns at once."""
        self._tick_at = time.monotonic() + seconds
        try:
            while self._metadata is None and self._status is None:
                self._receive()
                if self._ticked:
                    self._ticked = False
                    return False
            return True
        finally:
            self._tick_at = None

    def message_batches(self, idle_s: float | None = None) -> Iterator[list[bytes]]:
        """Response messages as they are read: each list holds those that came in together.

        ``idle_s``: an empty list, a watchdog tick, after each ``idle_s`` seconds in which the
        peer sent nothing; the caller decides whether the silence is news.
        """
        try:
            if idle_s is not None:
                self._tick_at = time.monotonic() + idle_s
            while True:
                buffer = self._buffer
                batch = []
                start = 0
                while len(buffer) - start >= 5:
                    size = int.from_bytes(buffer[start + 1 : start + 5], "big")
                    end = start + 5 + size
                    if len(buffer) < end:
                        break
                    if buffer[start]:  # the compressed flag: the one per-message check
                        batch.append(self._decompress(buffer[start + 5 : end]))
                    else:
                        batch.append(bytes(buffer[start + 5 : end]))
                    start = end
                del buffer[:start]
                if batch:
                    yield batch
                    if idle_s is not None:  # the silence counts from when the caller is ready again
                        self._tick_at = time.monotonic() + idle_s
                if self._status is not None:
                    break
                self._receive()
                if self._ticked and idle_s is not None:
                    self._ticked = False
                    yield []
                    self._tick_at = time.monotonic() + idle_s
            code, details = self._status
            if code != "OK":
                raise CallError(code, details)
            if self._buffer:
                raise CallError("INTERNAL", "the server ended the call in the middle of a message")
        finally:
            self.close()

    def unary(self) -> bytes:
        """The one response message of a unary call."""
        responses = [message for batch in self.message_batches() for message in batch]
        if len(responses) != 1:
            raise CallError("INTERNAL", f"a unary call answered {len(responses)} messages")
        return responses[0]

    def _decompress(self, compressed: bytearray) -> bytes:
        """A message sent with the compressed flag, decoded as ``grpc-encoding`` says, at
        most ``MAX_MESSAGE_BYTES`` of it (a small bomb must not become a large memory)."""
        if self._encoding not in ("gzip", "deflate"):
            self.close()
            raise CallError(
                "INTERNAL", f"a compressed message with grpc-encoding {self._encoding[:40]!r}: cannot decode it"
            )
        import zlib

        decoder = zlib.decompressobj(ZLIB_OR_GZIP)
        try:
            message = decoder.decompress(compressed, MAX_MESSAGE_BYTES + 1)
        except zlib.error as error:
            self.close()
            raise CallError("INTERNAL", f"a {self._encoding} message that does not decode ({error})") from None
        if len(message) > MAX_MESSAGE_BYTES:
            self.close()
            raise CallError("RESOURCE_EXHAUSTED", "a compressed message larger than 64 MiB once decoded")
        if not decoder.eof:
            self.close()
            raise CallError("INTERNAL", f"a truncated {self._encoding} message")
        return message

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as error:
            self._fail("UNAVAILABLE", f"connection lost ({error.strerror or error})")

    def _request_frames(self) -> bytes:
        """The DATA frames of what the peer's windows and frame size allow of the request
        message now; the rest waits for a WINDOW_UPDATE or SETTINGS that makes room."""
        frames = b""
        while self._unsent:
            room = min(self._send_window, self._stream_send_window, self._peer_max_frame)
            if room <= 0:
                break
            chunk, self._unsent = self._unsent[:room], self._unsent[room:]
            self._send_window -= len(chunk)
            self._stream_send_window -= len(chunk)
            frames += frame(DATA, 0 if self._unsent else END_STREAM, STREAM_ID, chunk)
        return frames

    def _fail(self, code: str, details: str) -> None:
        if self._status is None:
            self._status = (code, details)
        self.close()

    def _protocol_error(self, what: str) -> None:
        self._fail("INTERNAL", f"HTTP/2 protocol error from the server: {what}")

    def _read(self) -> bytes:
        """The next bytes from the peer (empty once the call ended, or at a watchdog tick),
        sending a keepalive PING when it is silent for too long and failing the call when
        that PING is not answered, or when the deadline passes."""
        while True:
            limit = self._keepalive_timeout if self._ping_sent else self._keepalive_time
            wait = limit - self._quiet_s
            if self._deadline is not None:
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    self._fail("DEADLINE_EXCEEDED", "no answer within the call's deadline")
                    return b""
                wait = min(wait, remaining)
            if self._tick_at is not None:
                to_tick = self._tick_at - time.monotonic()
                if to_tick <= 0:
                    self._ticked = True
                    return b""
                wait = min(wait, to_tick)
            if wait != self._wait:
                self._sock.settimeout(wait)
                self._wait = wait
            try:
                data = self._sock.recv(RECEIVE_CHUNK)
            except TimeoutError:
                # The silence counts toward the keepalive whatever woke us (the deadline or a
                # watchdog tick, both checked above), so ticks never postpone a PING.
                self._quiet_s += wait
                if self._quiet_s < limit - 1e-6:
                    continue
                self._quiet_s = 0.0
                if self._ping_sent:
                    self._fail("UNAVAILABLE", f"no answer to a keepalive ping within {self._keepalive_timeout:g} s")
                    return b""
                self._ping_sent = True
                self._send(frame(PING, 0, 0, b"keepaliv"))
                if self._status is not None:
                    return b""
                continue
            except OSError as error:
                self._fail(
                    "CANCELLED" if self._closed.is_set() else "UNAVAILABLE",
                    f"connection lost ({error.strerror or error})",
                )
                return b""
            if not data:
                self._fail("CANCELLED" if self._closed.is_set() else "UNAVAILABLE", "the server closed the connection")
            self._ping_sent = False  # anything at all from the peer shows the path is alive
            self._quiet_s = 0.0
            return data

    def _receive(self) -> None:
        """Read what the server sent next and act on it (blocks until something comes)."""
        if self._closed.is_set():
            self._fail("CANCELLED", "the call was closed")
            return
        data = self._read()
        if not data:
            return
        incoming = self._incoming
        incoming += data
        start = 0
        while len(incoming) - start >= 9 and self._status is None:
            length = int.from_bytes(incoming[start : start + 3], "big")
            if length > MAX_FRAME:
                self._protocol_error(f"a frame of {length} bytes, above {MAX_FRAME}")
                return
            end = start + 9 + length
            if len(incoming) < end:
                break
            kind, flags = incoming[start + 3], incoming[start + 4]
            stream_id = int.from_bytes(incoming[start + 5 : start + 9], "big") & 0x7FFFFFFF
            self._on_frame(kind, flags, stream_id, memoryview(incoming)[start + 9 : end])
            start = end
        del incoming[:start]
        if self._unacknowledged >= WINDOW_BYTES // 2 and self._status is None:
            self._send(window_update(0, self._unacknowledged) + window_update(STREAM_ID, self._unacknowledged))
            self._unacknowledged = 0

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: memoryview) -> None:
        if self._header_block is not None and (kind != CONTINUATION or stream_id != STREAM_ID):
            self._protocol_error("a header block interrupted by another frame")
        elif kind == DATA and stream_id == STREAM_ID:
            self._unacknowledged += len(payload)
            if self._metadata is None:
                self._protocol_error("DATA before the response headers")
                return
            if flags & PADDED:
                payload = self._unpad(payload)
            self._buffer += payload
            if len(self._buffer) > MAX_MESSAGE_BYTES + 5:
                self._fail("RESOURCE_EXHAUSTED", "a message larger than 64 MiB")
            elif flags & END_STREAM and self._status is None:
                self._status = ("INTERNAL", "the server ended the call without a status")
        elif kind == HEADERS and stream_id == STREAM_ID:
            if flags & PADDED:
                payload = self._unpad(payload)
            if flags & PRIORITY:
                payload = payload[5:]
            self._header_block = bytearray()
            self._header_block_ends_stream = bool(flags & END_STREAM)
            self._on_header_fragment(flags, payload)
        elif kind == CONTINUATION:
            if self._header_block is None:
                self._protocol_error("a CONTINUATION frame without HEADERS")
            else:
                self._on_header_fragment(flags, payload)
        elif kind == SETTINGS:
            self._on_settings(flags, stream_id, payload)
        elif kind == PING:
            if stream_id != 0 or len(payload) != 8:
                self._protocol_error("a malformed PING frame")
            elif not flags & ACK:
                self._send(frame(PING, ACK, 0, bytes(payload)))
        elif kind == WINDOW_UPDATE:
            self._on_window_update(stream_id, payload)
        elif kind == RST_STREAM and stream_id == STREAM_ID:
            if len(payload) != 4:
                self._protocol_error("a malformed RST_STREAM frame")
                return
            code = int.from_bytes(payload, "big")
            if code == CANCEL:
                self._fail("CANCELLED", "the server cancelled the call (RST_STREAM CANCEL)")
            else:
                self._fail(RESET_CODES.get(code, "INTERNAL"), f"stream reset by the server (HTTP/2 error {code})")
        elif kind == GOAWAY:
            self._on_goaway(payload)
        elif kind == PUSH_PROMISE:
            self._protocol_error("PUSH_PROMISE, though we disabled push")
        # Anything else (PRIORITY, unknown types, frames of other streams) asks nothing of us.

    def _unpad(self, payload: memoryview) -> memoryview:
        if not payload or payload[0] >= len(payload):
            self._protocol_error("padding longer than its frame")
            return payload[:0]
        return payload[1 : len(payload) - payload[0]]

    def _on_header_fragment(self, flags: int, fragment: memoryview) -> None:
        block = self._header_block
        assert block is not None
        block += fragment
        if len(block) > MAX_HEADER_BLOCK:
            self._fail("INTERNAL", f"the server's header block is larger than {MAX_HEADER_BLOCK // 1024} KiB")
            return
        if not flags & END_HEADERS:
            return
        self._header_block = None
        try:
            # With raw=False (the default) hpack gives (str, str) pairs; its hints say less.
            headers = cast(list[tuple[str, str]], self._decoder.decode(bytes(block)))
        except (hpack.HPACKError, UnicodeDecodeError) as error:
            reason = str(error).splitlines()[0][:100] if str(error) else type(error).__name__
            self._fail("INTERNAL", f"the server's headers do not decode (HPACK: {reason})")
            return
        self._on_headers(headers, self._header_block_ends_stream)

    def _on_settings(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if stream_id != 0 or len(payload) % 6 or (flags & ACK and payload):
            self._protocol_error("a malformed SETTINGS frame")
            return
        if flags & ACK:
            return
        for offset in range(0, len(payload), 6):
            key = int.from_bytes(payload[offset : offset + 2], "big")
            value = int.from_bytes(payload[offset + 2 : offset + 6], "big")
            if key == SETTINGS_MAX_FRAME_SIZE:
                if not MAX_FRAME <= value <= 2**24 - 1:
                    self._protocol_error(f"SETTINGS_MAX_FRAME_SIZE {value}")
                    return
                self._peer_max_frame = value
            elif key == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    self._protocol_error(f"SETTINGS_INITIAL_WINDOW_SIZE {value}")
                    return
                self._stream_send_window += value - self._peer_initial_window
                self._peer_initial_window = value
        self._send(frame(SETTINGS, ACK, 0) + self._request_frames())

    def _on_window_update(self, stream_id: int, payload: memoryview) -> None:
        if len(payload) != 4:
            self._protocol_error("a malformed WINDOW_UPDATE frame")
            return
        increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
        if stream_id == 0:
            self._send_window += increment
            window = self._send_window
        elif stream_id == STREAM_ID:
            self._stream_send_window += increment
            window = self._stream_send_window
        else:
            return
        if increment == 0 or window > MAX_WINDOW:
            self._protocol_error(f"a WINDOW_UPDATE of {increment}")
            return
        if self._unsent:
            self._send(self._request_frames())

    def _on_goaway(self, payload: memoryview) -> None:
        if len(payload) < 8:
            self._protocol_error("a malformed GOAWAY frame")
            return
        last_stream = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
        code = int.from_bytes(payload[4:8], "big")
        if code == ENHANCE_YOUR_CALM and payload[8:] == TOO_MANY_PINGS:
            keepalive_slowdown["factor"] = min(keepalive_slowdown["factor"] * 2, 64)
            self.pings_refused = True
        if last_stream < STREAM_ID:  # our call was never processed: safe to make again
            debug = bytes(payload[8:72]).decode(errors="replace").splitlines()
            detail = f": {debug[0]}" if debug and debug[0] else ""
            self._fail("UNAVAILABLE", f"the server is going away (HTTP/2 error {code}{detail})")
        # Otherwise the server finishes our call before it closes the connection.

    def _on_headers(self, headers: list[tuple[str, str]], ends_stream: bool) -> None:
        fields = dict(headers)
        if self._metadata is None:
            status = fields.get(":status", "")
            if status.startswith("1") and not ends_stream:
                return  # an informational answer (1xx): the real one follows
            self._metadata = list(headers)
            self._encoding = fields.get("grpc-encoding", "identity")
            if status != "200" and "grpc-status" not in fields:
                code = HTTP_STATUS_CODES.get(status, "UNKNOWN")
                self._fail(code, f"HTTP status {status[:10] or 'missing'}: not a gRPC answer")
                return
            if "grpc-status" not in fields and not ends_stream:
                return  # the response's headers; the status comes with the trailers
        if "grpc-status" not in fields:
            self._fail("INTERNAL", "the server ended the call without a status")
            return
        text = fields["grpc-status"]
        number = int(text) if text.isascii() and text.isdigit() and len(text) < 4 else 2
        code = GRPC_CODE_NAMES[number] if number < len(GRPC_CODE_NAMES) else "UNKNOWN"
        message = fields.get("grpc-message", "")
        if "%" in message:  # percent-encoded on the wire; rare enough to import for
            from urllib.parse import unquote

            message = unquote(message)
        if "\n" in message or "\r" in message:  # details are shown on one line
            message = " ".join(message.split())
        self._status = (code, message or code.lower())
