"""The HTTP/2 side of a gRPC call, for a client of one stream: frames, limits and codes
(RFC 9113, gRPC's PROTOCOL-HTTP2.md)."""

from __future__ import annotations

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
