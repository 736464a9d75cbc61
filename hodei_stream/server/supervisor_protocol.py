"""The small message protocol between a job's supervisor and the server, over a Unix socket.

A message is a 5-byte header (kind: 1 byte, payload length: 4 bytes, big-endian) and the
payload.  Control messages carry JSON; ``LINES`` carries a batch of captured lines in a binary
layout, because it is the hot path.  The supervisor opens the connection and introduces
itself with ``HELLO`` (job id, its pid and the last sequence it wrote); the server answers
``RESUME`` with the last sequence it stored, and the supervisor sends every line after that
one (from its spool) before it goes on live.  So a supervisor reconnects to a restarted
server, and nothing is lost or sent twice.  ``DONE`` ends a job's conversation: the server
has stored the job's outcome and every line (or does not want the job: it is unknown or
over), and the supervisor may stop the job if it still runs, forget its spool and exit.
"""

from __future__ import annotations

import asyncio
import enum
import json
import socket
import struct
from collections.abc import Iterable
from typing import Any

from hodei_stream.records import LogLine

HEADER = struct.Struct("!BI")
# One line inside a LINES payload: sequence, capture time (ns since the epoch), is_stderr,
# length of the UTF-8 text that follows.
LINE_HEADER = struct.Struct("!QQBI")


class MessageKind(enum.IntEnum):
    HELLO = 1  # supervisor → server, JSON {"job_id", "last_sequence", "pid"}
    STARTED = 2  # supervisor → server, JSON {"pid", "started_ns"}
    LINES = 3  # supervisor → server, a binary batch of lines (see LINE_HEADER)
    EXITED = 4  # supervisor → server, JSON, see ``JobOutcome``
    CANCEL = 5  # server → supervisor, JSON {"reason"}
    RESUME = 6  # server → supervisor, the answer to HELLO: JSON {"after_sequence"}
    DONE = 7  # server → supervisor, JSON {}: everything is stored, forget the job


def encode(kind: MessageKind, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def encode_json(kind: MessageKind, value: dict[str, Any]) -> bytes:
    return encode(kind, json.dumps(value).encode())


def encode_line_records(lines: Iterable[LogLine]) -> bytes:
    """The payload of a LINES message (also the layout of a supervisor's spool file)."""
    parts: list[bytes] = []
    for line in lines:
        text = line.text.encode()
        parts.append(LINE_HEADER.pack(line.sequence, line.captured_ns, line.is_stderr, len(text)))
        parts.append(text)
    return b"".join(parts)


def decode_lines(job_id: str, payload: bytes) -> list[LogLine]:
    """The lines of a LINES payload; the job is the connection's, so it is not on the wire."""
    lines: list[LogLine] = []
    offset = 0
    while offset < len(payload):
        sequence, captured_ns, is_stderr, size = LINE_HEADER.unpack_from(payload, offset)
        offset += LINE_HEADER.size
        text = payload[offset : offset + size].decode()
        offset += size
        lines.append(LogLine(job_id, sequence, captured_ns, bool(is_stderr), text))
    return lines


async def read_message(reader: asyncio.StreamReader) -> tuple[MessageKind, bytes] | None:
    """The next message, or None at a clean end of the connection."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise
        return None
    kind, size = HEADER.unpack(header)
    return MessageKind(kind), await reader.readexactly(size)


class MessageReader:
    """Reassembles messages from a blocking socket's chunks (the supervisor's side)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[MessageKind, bytes]]:
        self.buffer += chunk
        messages: list[tuple[MessageKind, bytes]] = []
        while len(self.buffer) >= HEADER.size:
            kind, size = HEADER.unpack_from(self.buffer)
            end = HEADER.size + size
            if len(self.buffer) < end:
                break
            messages.append((MessageKind(kind), bytes(self.buffer[HEADER.size : end])))
            del self.buffer[:end]
        return messages


def connect(path: str, timeout: float) -> socket.socket:
    """The supervisor's connection to the server's worker socket (blocking, with ``timeout``
    on each operation until the caller changes it)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect(path)
    except OSError:
        connection.close()
        raise
    return connection


def receive_messages(connection: socket.socket, reader: MessageReader) -> list[tuple[MessageKind, bytes]]:
    """Block until at least one whole message arrived; OSError when the connection ends first."""
    while True:
        chunk = connection.recv(1 << 16)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        if received := reader.feed(chunk):
            return received
