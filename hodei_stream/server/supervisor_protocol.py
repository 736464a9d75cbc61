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

A payload is at most ``MAX_PAYLOAD_BYTES`` (8 MiB), on both ends: ``encode`` refuses to make a
longer one, and both readers refuse a header announcing one before reading (let alone
allocating) its payload.  The largest message is a ``LINES`` batch: the supervisor closes a
batch once it holds ``BATCH_BYTES`` (1 MiB, also the spool's hand-over size), so a batch is
under 1 MiB plus one line, and a line is at most 2 MiB of UTF-8 (the supervisor cuts longer
ones, after invalid bytes became U+FFFD): about 3 MiB in all.
"""

from __future__ import annotations

import enum
import json
import socket
import struct
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from hodei_stream.records import LogLine

HEADER = struct.Struct("!BI")
# One line inside a LINES payload: sequence, capture time (ns since the epoch), is_stderr,
# length of the UTF-8 text that follows.
LINE_HEADER = struct.Struct("!QQBI")
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
# A LINES batch is closed once it holds this much (see the module's docstring for the bound).
BATCH_BYTES = 1 << 20


class MessageTooLong(ValueError):
    """A header announced a payload over ``MAX_PAYLOAD_BYTES``: the peer is not to be trusted."""


def checked_size(size: int) -> int:
    if size > MAX_PAYLOAD_BYTES:
        raise MessageTooLong(f"a supervisor message of {size} bytes (at most {MAX_PAYLOAD_BYTES})")
    return size


class MessageKind(enum.IntEnum):
    HELLO = 1  # supervisor → server, JSON {"job_id", "last_sequence", "pid"}
    STARTED = 2  # supervisor → server, JSON {"pid", "started_ns"}
    LINES = 3  # supervisor → server, a binary batch of lines (see LINE_HEADER)
    EXITED = 4  # supervisor → server, JSON, see ``JobOutcome``
    CANCEL = 5  # server → supervisor, JSON {"reason"}
    RESUME = 6  # server → supervisor, the answer to HELLO: JSON {"after_sequence"}
    DONE = 7  # server → supervisor, JSON {}: everything is stored, forget the job


def encode(kind: MessageKind, payload: bytes) -> bytes:
    return HEADER.pack(kind, checked_size(len(payload))) + payload


def encode_json(kind: MessageKind, value: dict[str, Any]) -> bytes:
    return encode(kind, json.dumps(value).encode())


def encode_line_records(lines: Iterable[LogLine]) -> bytes:
    """The payload of a LINES message (also the layout of a supervisor's spool file)."""
    parts: list[bytes] = []
    for line in lines:
        text = line.text.encode()
        parts += (LINE_HEADER.pack(line.sequence, line.captured_ns, line.is_stderr, len(text)), text)
    return b"".join(parts)


def line_records(first_sequence: int, captured_ns: int, is_stderr: bool, texts: list[str]) -> list[bytes]:
    """One LINES record per text (numbered from ``first_sequence``; no text holds a ``\\n``):
    the supervisor's hot path, so nothing per line but the record itself."""
    if not texts:
        return []
    pack = LINE_HEADER.pack
    # One encode and one split for all of them, rather than an ``encode`` call per line.
    encoded = "\n".join(texts).encode().split(b"\n")
    return [
        pack(sequence, captured_ns, is_stderr, len(text)) + text
        for sequence, text in enumerate(encoded, first_sequence)
    ]


def batch_records(records: list[bytes], first_sequence: int) -> Iterator[tuple[bytes, int, int]]:
    """``records`` (consecutive lines from ``first_sequence`` on) as LINES payloads, each closed
    once it holds ``BATCH_BYTES`` (so one payload unless the lines are long), each with its
    first and last sequence."""
    if sum(map(len, records)) < BATCH_BYTES:
        if records:
            yield b"".join(records), first_sequence, first_sequence + len(records) - 1
        return
    start = size = 0
    for index, record in enumerate(records):
        size += len(record)
        if size >= BATCH_BYTES:
            yield b"".join(records[start : index + 1]), first_sequence + start, first_sequence + index
            start, size = index + 1, 0
    if start < len(records):
        yield b"".join(records[start:]), first_sequence + start, first_sequence + len(records) - 1


def last_sequence(payload: bytes) -> int:
    """The sequence of the last line of a LINES payload (walks the records' headers)."""
    offset = 0
    sequence = 0
    while offset < len(payload):
        sequence, _ns, _stderr, size = LINE_HEADER.unpack_from(payload, offset)
        offset += LINE_HEADER.size + size
    return sequence


class MessageReader:
    """Reassembles messages from a socket's chunks (the supervisor's side)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[MessageKind, bytes]]:
        self.buffer += chunk
        messages: list[tuple[MessageKind, bytes]] = []
        while len(self.buffer) >= HEADER.size:
            kind, size = HEADER.unpack_from(self.buffer)
            end = HEADER.size + checked_size(size)
            if len(self.buffer) < end:
                break
            messages.append((MessageKind(kind), bytes(self.buffer[HEADER.size : end])))
            del self.buffer[:end]
        return messages


def connect(path: str) -> socket.socket:
    """The supervisor's connection to the server's worker socket, non-blocking (its writes go
    through the supervisor's event loop); OSError when nobody listens there."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.setblocking(False)
    try:
        connection.connect(path)  # a Unix socket connects at once, or fails (EAGAIN: backlog full)
    except OSError:
        connection.close()
        raise
    return connection


class JobCommand(NamedTuple):
    """What the server tells the supervisor on its stdin (JSON).  A NamedTuple rather than a
    dataclass: the supervisor imports it at every job's start, and dataclasses cost ~10 % of
    that start-up."""

    command: str
    arguments: list[str]
    environment: dict[str, str]
    working_directory: str
    timeout_s: float | None
    batch_capacity: int
    batch_flush_interval_s: float
    kill_grace_s: float
    drain_after_exit_s: float
    spool_directory: str
    linger_s: float
