"""The HTTP/2 side of one gRPC call, without I/O: bytes in, typed events out.

As python-hyper h2's ``H2Connection``: ``ClientConnection.receive_data(bytes)`` returns the
events those bytes make, ``data_to_send()`` the bytes to write back (the preface and the
request first, then SETTINGS and PING acknowledgements, WINDOW_UPDATEs and the rest of a
request a window held back).  No socket, no clock, no threads: the driver (``wire.Call``)
reads and writes, keeps the deadline and the keepalive, and decides what an event means for
the process (a GOAWAY "too_many_pings" slows later PINGs down).

A client of one stream (gRPC's PROTOCOL-HTTP2.md, RFC 9113): whatever the peer sends ends
in one terminal event, ``CallEnded`` (the call's status: trailers, an HTTP status, a reset, a
GOAWAY, a limit passed) or ``ProtocolError`` (the peer broke HTTP/2), and every size the peer
controls is bounded (a frame: 16 KiB, our advertised default; the rest by ``Limits``).
Compression: ``grpc-encoding`` gzip and deflate are decoded (``grpc-accept-encoding`` says
so); a compressed message under identity or an unknown encoding is INTERNAL.  Without
``grpc-status`` (a proxy answering), the HTTP status becomes the gRPC code of gRPC's
http-grpc-status-mapping.md; RST_STREAM codes map as PROTOCOL-HTTP2.md says.

On the DATA path nothing is made per frame: each ``receive_data`` returns the messages its
bytes completed as one ``MessagesReceived``: their bytes, or, given a ``MessageDecoder``,
what it made of them, read in one pass over the received bytes (no copy per message).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import hpack

from hodei_stream.endpoint import MAX_MESSAGE_BYTES

# How much the server may send ahead of our reading; topped up once half is used.
WINDOW_BYTES = 16 * 1024 * 1024
STREAM_ID = 1  # the one stream of the connection
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Frame types and flags (RFC 9113, section 6).
DATA, HEADERS, PRIORITY_FRAME, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE = 0x1, 0x2, 0x4
SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 0x5, 0x6
DEFAULT_WINDOW = 65_535  # a peer's initial windows until its SETTINGS say otherwise
MAX_WINDOW = 2**31 - 1
STREAM_ID_BITS = 0x7FFFFFFF  # a stream id or window increment has 31 bits: the first is reserved
MAX_FRAME = 16_384  # the largest frame a peer may send us: we never raise the default
MAX_HEADER_BLOCK = 64 * 1024  # a header block, CONTINUATIONs included, and its decoded list
GRPC_CODE_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)  # fmt: skip
# gRPC's http-grpc-status-mapping.md, for answers without grpc-status (proxies); any other
# status is UNKNOWN.
HTTP_STATUS_CODES = {
    "400": "INTERNAL", "401": "UNAUTHENTICATED", "403": "PERMISSION_DENIED", "404": "UNIMPLEMENTED",
    "429": "UNAVAILABLE", "502": "UNAVAILABLE", "503": "UNAVAILABLE", "504": "UNAVAILABLE",
}  # fmt: skip
# RST_STREAM error codes (RFC 9113, section 7) → gRPC codes (PROTOCOL-HTTP2.md); the rest INTERNAL.
REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM, INADEQUATE_SECURITY = 0x7, 0x8, 0xB, 0xC
RESET_CODES = {REFUSED_STREAM: "UNAVAILABLE", CANCEL: "CANCELLED", ENHANCE_YOUR_CALM: "RESOURCE_EXHAUSTED",
               INADEQUATE_SECURITY: "PERMISSION_DENIED"}  # fmt: skip
ACCEPTED_ENCODINGS = "identity,deflate,gzip"
# zlib's window bits that accept a zlib (deflate) or gzip header, whichever comes (32 +
# zlib.MAX_WBITS: zlib is imported only for a compressed message, ssl only for TLS).
ZLIB_OR_GZIP = 32 + 15


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))


class Limits(NamedTuple):
    """What the peer may make this side hold: a message once decoded (compressed or not), a
    header block with its CONTINUATIONs and its decoded list (advertised in our SETTINGS), and
    how far the server may send ahead of our reading (topped up once half is used)."""

    max_message: int = MAX_MESSAGE_BYTES
    max_header_block: int = MAX_HEADER_BLOCK
    receive_window: int = WINDOW_BYTES


DEFAULT_LIMITS = Limits()


class ResponseHeaders(NamedTuple):
    """The response's headers (not the trailers): its initial metadata."""

    headers: list[tuple[str, str]]


class MessagesReceived(list[Any]):
    """The gRPC messages (decompressed) that the bytes of one ``receive_data`` completed, as
    bytes or as the connection's ``MessageDecoder`` decoded them: the event is their list, so
    the DATA path makes no object beyond it."""


# Decodes the length-prefixed messages of a stream's DATA from an offset on, appending what
# each is to the list; returns where it stopped (the end, a message not yet whole, or a
# compressed one).  A message that does not decode raises ValueError: the call ends INTERNAL.
MessageDecoder = Callable[[bytes, int, list[Any]], int]


class PingReceived(NamedTuple):
    """A PING from the peer; its acknowledgement is already in ``data_to_send()``."""

    payload: bytes


class PingAcknowledged(NamedTuple):
    """The peer's answer to a PING of ours."""

    payload: bytes


class WindowUpdated(NamedTuple):
    """The peer gave room to send (stream 0: the connection's window)."""

    stream_id: int
    increment: int


class StreamReset(NamedTuple):
    """RST_STREAM on our stream; ``CallEnded`` follows with its gRPC code."""

    error_code: int


class GoAwayReceived(NamedTuple):
    """GOAWAY: the connection is closing; ``CallEnded`` follows if our stream was never processed."""

    error_code: int
    last_stream_id: int
    debug_data: bytes


class CallEnded(NamedTuple):
    """The call's status (a gRPC code name and its details): the last event."""

    code: str
    details: str


class ProtocolError(NamedTuple):
    """The peer broke HTTP/2 (``what`` it did): the last event, INTERNAL to gRPC."""

    what: str

    @property
    def code(self) -> str:
        return "INTERNAL"

    @property
    def details(self) -> str:
        return f"HTTP/2 protocol error from the server: {self.what}"


Event = (
    ResponseHeaders
    | MessagesReceived
    | PingReceived
    | PingAcknowledged
    | WindowUpdated
    | StreamReset
    | GoAwayReceived
    | CallEnded
    | ProtocolError
)


def request_header_block(path: str, authority: str, scheme: str, metadata: list[tuple[str, str]]) -> bytes:
    """A gRPC request's headers, HPACK-encoded, ``metadata`` after the gRPC ones."""
    headers = [
        (":method", "POST"),
        (":scheme", scheme),
        (":path", path),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-accept-encoding", ACCEPTED_ENCODINGS),
        *metadata,
    ]
    # Never indexed: the server's header table is then never ours to keep in step.
    return hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(name, value) for name, value in headers])


class ClientConnection:
    """A client's HTTP/2 connection carrying one gRPC call (``STREAM_ID``): ``path`` with the
    request message ``request``; ``metadata`` follows the gRPC headers (``grpc-timeout``,
    ``authorization``).  ``receive_data`` after the last event returns nothing."""

    def __init__(
        self,
        path: str,
        request: bytes,
        *,
        authority: str,
        scheme: str,
        metadata: list[tuple[str, str]],
        limits: Limits = DEFAULT_LIMITS,
        decode: MessageDecoder | None = None,
    ) -> None:
        self._limits = limits
        self._decode = decode
        self._decoder = hpack.Decoder(max_header_list_size=limits.max_header_block)
        self._incoming = bytearray()  # received bytes not yet parsed into frames
        self._header_block: bytearray | None = None  # a header block awaiting its CONTINUATIONs
        self._header_block_ends_stream = False
        self._unacknowledged = 0  # bytes of DATA read since our last WINDOW_UPDATE
        self._top_up_at = limits.receive_window // 2  # unacknowledged bytes that make one
        self._buffer = bytearray()  # the stream's DATA: length-prefixed gRPC messages
        self._has_headers = False  # the response's headers came
        self._encoding = "identity"  # the response's grpc-encoding
        self._status: CallEnded | ProtocolError | None = None  # the terminal event, once known
        self._ended = False  # the terminal event was returned
        self._events: list[Event] = []  # of the ``receive_data`` under way
        self._outbound = bytearray()
        block = request_header_block(path, authority, scheme, metadata)
        our_settings = b"".join(
            key.to_bytes(2, "big") + value.to_bytes(4, "big")
            for key, value in ((SETTINGS_ENABLE_PUSH, 0), (SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_header_block))
        )
        # What we may send is bounded by the peer's SETTINGS and windows (the defaults until
        # its SETTINGS come): the request goes out as they allow.
        self._peer_max_frame = MAX_FRAME
        self._peer_initial_window = DEFAULT_WINDOW
        self._send_window = DEFAULT_WINDOW  # the connection's
        self._stream_send_window = DEFAULT_WINDOW
        self._unsent = b"\x00" + len(request).to_bytes(4, "big") + request
        self._outbound += (
            PREFACE
            + frame(SETTINGS, 0, 0, our_settings)
            + window_update(0, limits.receive_window)
            + frame(HEADERS, END_HEADERS, STREAM_ID, block)
            + window_update(STREAM_ID, limits.receive_window)
            + self._request_frames()
        )

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer now (and forget)."""
        if not self._outbound:  # the common case on the DATA path: nothing to answer
            return b""
        data = bytes(self._outbound)
        self._outbound.clear()
        return data

    def ping(self, payload: bytes) -> None:
        """Send a PING of 8 bytes (a keepalive); ``PingAcknowledged`` says it was answered."""
        self._outbound += frame(PING, 0, 0, payload)

    def receive_data(self, data: bytes) -> list[Event]:
        """The events ``data`` (the next bytes from the peer, cut anywhere) makes."""
        if self._ended:
            return []
        events = self._events = []
        incoming = self._incoming
        incoming += data
        start = 0
        while len(incoming) - start >= 9 and self._status is None:
            length = int.from_bytes(incoming[start : start + 3], "big")
            if length > MAX_FRAME:
                self._protocol_error(f"a frame of {length} bytes, above {MAX_FRAME}")
                break
            end = start + 9 + length
            if len(incoming) < end:
                break
            kind, flags = incoming[start + 3], incoming[start + 4]
            stream_id = int.from_bytes(incoming[start + 5 : start + 9], "big") & STREAM_ID_BITS
            self._on_frame(kind, flags, stream_id, memoryview(incoming)[start + 9 : end])
            start = end
        del incoming[:start]
        if self._unacknowledged >= self._top_up_at and self._status is None:
            self._outbound += window_update(0, self._unacknowledged) + window_update(STREAM_ID, self._unacknowledged)
            self._unacknowledged = 0
        if self._buffer:
            self._take_messages()
        if self._status is not None:
            if type(self._status) is CallEnded and self._status.code == "OK" and self._buffer:
                self._status = CallEnded("INTERNAL", "the server ended the call in the middle of a message")
            events.append(self._status)
            self._ended = True
        return events

    def _take_messages(self) -> None:
        """The whole messages at the front of the stream's DATA, as one event."""
        buffer = self._buffer
        batch = MessagesReceived()
        decode = self._decode
        start = 0
        while True:
            if decode is not None:  # all it can in one pass; what stops it is read below
                # From a copy as bytes: slicing bytes costs a third less than a bytearray,
                # which pays for the copy many times over.
                start = self._decoded(bytes(buffer), start, batch)
            if len(buffer) - start < 5:
                break
            size = int.from_bytes(buffer[start + 1 : start + 5], "big")
            end = start + 5 + size
            if len(buffer) < end:
                break
            if buffer[start]:  # the compressed flag: the one per-message check
                message = self._decompress(buffer[start + 5 : end])
                if message is None:  # the call failed: its messages so far go with it
                    return
                if decode is not None:  # read again as the decoder reads a stream: behind its prefix
                    self._decoded(b"\x00" + len(message).to_bytes(4, "big") + message, 0, batch)
                else:
                    batch.append(message)
            else:  # without a decoder: a decoder reads every uncompressed whole message
                batch.append(bytes(buffer[start + 5 : end]))
            start = end
        del buffer[:start]
        if batch:
            self._events.append(batch)

    def _decoded(self, data: bytes, start: int, batch: list[Any]) -> int:
        """The ``MessageDecoder`` on ``data`` from ``start``: where it stopped.  A message that
        does not decode ends the call (the stream's DATA is dropped: 0 from then on); the
        messages before it are kept."""
        assert self._decode is not None
        try:
            return self._decode(data, start, batch)
        except ValueError as error:
            self._end("INTERNAL", f"a message that does not decode ({error})")
            return 0

    def _decompress(self, compressed: bytearray) -> bytes | None:
        """A message sent with the compressed flag, decoded as ``grpc-encoding`` says, at
        most ``Limits.max_message`` of it (a small bomb must not become a large memory);
        None, and the call ends, when it cannot be."""
        if self._encoding not in ("gzip", "deflate"):
            self._end("INTERNAL", f"a compressed message with grpc-encoding {self._encoding[:40]!r}: cannot decode it")
            return None
        import zlib

        limit = self._limits.max_message
        decoder = zlib.decompressobj(ZLIB_OR_GZIP)
        try:
            message = decoder.decompress(compressed, limit + 1)
        except zlib.error as error:
            self._end("INTERNAL", f"a {self._encoding} message that does not decode ({error})")
            return None
        if len(message) > limit:
            self._end("RESOURCE_EXHAUSTED", f"a compressed message larger than {limit // 2**20} MiB once decoded")
            return None
        if not decoder.eof:
            self._end("INTERNAL", f"a truncated {self._encoding} message")
            return None
        return message

    def _end(self, code: str, details: str) -> None:
        """End the call with this status whatever was known before (a message that cannot be
        decoded is the call's end even after its trailers)."""
        self._status = CallEnded(code, details)
        self._buffer.clear()

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
            self._status = CallEnded(code, details)

    def _protocol_error(self, what: str) -> None:
        if self._status is None:
            self._status = ProtocolError(what)

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: memoryview) -> None:
        if self._header_block is not None and (kind != CONTINUATION or stream_id != STREAM_ID):
            self._protocol_error("a header block interrupted by another frame")
        elif kind == DATA and stream_id == STREAM_ID:
            self._unacknowledged += len(payload)
            if not self._has_headers:
                self._protocol_error("DATA before the response headers")
                return
            if flags & PADDED:
                payload = self._unpad(payload)
            self._buffer += payload
            if len(self._buffer) > self._limits.max_message + 5:
                self._fail("RESOURCE_EXHAUSTED", f"a message larger than {self._limits.max_message // 2**20} MiB")
            elif flags & END_STREAM and self._status is None:
                self._status = CallEnded("INTERNAL", "the server ended the call without a status")
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
            elif flags & ACK:
                self._events.append(PingAcknowledged(bytes(payload)))
            else:
                self._events.append(PingReceived(bytes(payload)))
                self._outbound += frame(PING, ACK, 0, bytes(payload))
        elif kind == WINDOW_UPDATE:
            self._on_window_update(stream_id, payload)
        elif kind == RST_STREAM and stream_id == STREAM_ID:
            self._on_reset(payload)
        elif kind == GOAWAY:
            self._on_goaway(payload)
        elif kind == PUSH_PROMISE:
            self._protocol_error("PUSH_PROMISE, though we disabled push")
        # Anything else (PRIORITY, unknown types, frames of other streams) asks nothing of us.

    def _on_reset(self, payload: memoryview) -> None:
        if len(payload) != 4:
            self._protocol_error("a malformed RST_STREAM frame")
            return
        code = int.from_bytes(payload, "big")
        self._events.append(StreamReset(code))
        if code == CANCEL:
            self._fail("CANCELLED", "the server cancelled the call (RST_STREAM CANCEL)")
        else:
            self._fail(RESET_CODES.get(code, "INTERNAL"), f"stream reset by the server (HTTP/2 error {code})")

    def _unpad(self, payload: memoryview) -> memoryview:
        if not payload or payload[0] >= len(payload):
            self._protocol_error("padding longer than its frame")
            return payload[:0]
        return payload[1 : len(payload) - payload[0]]

    def _on_header_fragment(self, flags: int, fragment: memoryview) -> None:
        block = self._header_block
        assert block is not None
        block += fragment
        if len(block) > self._limits.max_header_block:
            self._fail(
                "INTERNAL", f"the server's header block is larger than {self._limits.max_header_block // 1024} KiB"
            )
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
        self._outbound += frame(SETTINGS, ACK, 0) + self._request_frames()

    def _on_window_update(self, stream_id: int, payload: memoryview) -> None:
        if len(payload) != 4:
            self._protocol_error("a malformed WINDOW_UPDATE frame")
            return
        increment = int.from_bytes(payload, "big") & STREAM_ID_BITS
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
        self._events.append(WindowUpdated(stream_id, increment))
        if self._unsent:
            self._outbound += self._request_frames()

    def _on_goaway(self, payload: memoryview) -> None:
        if len(payload) < 8:
            self._protocol_error("a malformed GOAWAY frame")
            return
        last_stream = int.from_bytes(payload[:4], "big") & STREAM_ID_BITS
        code = int.from_bytes(payload[4:8], "big")
        self._events.append(GoAwayReceived(code, last_stream, bytes(payload[8:])))
        if last_stream < STREAM_ID:  # our call was never processed: safe to make again
            debug = bytes(payload[8:72]).decode(errors="replace").splitlines()
            detail = f": {debug[0]}" if debug and debug[0] else ""
            self._fail("UNAVAILABLE", f"the server is going away (HTTP/2 error {code}{detail})")
        # Otherwise the server finishes our call before it closes the connection.

    def _on_headers(self, headers: list[tuple[str, str]], ends_stream: bool) -> None:
        fields = dict(headers)
        if not self._has_headers:
            status = fields.get(":status", "")
            if status.startswith("1") and not ends_stream:
                return  # an informational answer (1xx): the real one follows
            self._has_headers = True
            self._events.append(ResponseHeaders(list(headers)))
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
        self._status = CallEnded(code, message or code.lower())
