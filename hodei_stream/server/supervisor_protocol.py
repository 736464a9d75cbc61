"""The link protocol between a job's supervisor and the server, over a Unix socket.

Its unit is a record (not a gRPC message, not an HTTP/2 frame): a 5-byte header (kind: 1
byte, payload length: 4 bytes, big-endian) and the payload.  Control records carry JSON;
``LINES`` carries a batch of captured lines in a binary layout, because it is the hot path.
The supervisor opens the connection and introduces itself with ``HELLO`` (job id, its pid and
the last sequence it wrote); the server answers ``RESUME`` with the last sequence it stored,
and the supervisor sends every line after that one (from its spool) before it goes on live.
So a supervisor reconnects to a restarted server, and nothing is lost or sent twice.
``DONE`` ends a job's conversation: the server has stored the job's outcome and every line
(or does not want the job: it is unknown or over), and the supervisor may stop the job if it
still runs, forget its spool and exit.

Each JSON record has a type (``Hello``, ``Started``, ``Exited``, ``Cancel``, ``Resume``,
``Done``): ``encode_record`` frames one, ``decode_record`` reads one back, and
``RecordReader`` (fed bytes, no I/O) turns a connection's bytes into these records and
``Lines``.  ``JobCommand`` is what the server hands a new supervisor on its stdin.

A payload is at most ``MAX_PAYLOAD_BYTES`` (8 MiB), on both ends: ``encode`` refuses to make a
longer one, and both readers refuse a header announcing one before reading (let alone
allocating) its payload.  The largest record is a ``LINES`` batch: the supervisor closes a
batch once it holds ``BATCH_BYTES`` (1 MiB, also the spool's hand-over size), so a batch is
under 1 MiB plus one line, and a line is at most 2 MiB of UTF-8 (the supervisor cuts longer
ones, after invalid bytes became U+FFFD): about 3 MiB in all.
"""

from __future__ import annotations

import enum
import json
import signal
import socket
import struct
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, TypeVar

from hodei_stream.records import LogLine

HEADER = struct.Struct("!BI")
# One line inside a LINES payload: sequence, capture time (ns since the epoch), is_stderr,
# length of the UTF-8 text that follows.
LINE_HEADER = struct.Struct("!QQBI")
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
# A LINES batch is closed once it holds this much (see the module's docstring for the bound).
BATCH_BYTES = 1 << 20


class MalformedRecord(ValueError):
    """What the peer sent is no message of this protocol (an unknown kind, a JSON message that
    does not read as its record): the peer is not to be trusted."""


class RecordTooLong(MalformedRecord):
    """A header announced a payload over ``MAX_PAYLOAD_BYTES``: the peer is not to be trusted."""


def checked_size(size: int) -> int:
    if size > MAX_PAYLOAD_BYTES:
        raise RecordTooLong(f"a supervisor message of {size} bytes (at most {MAX_PAYLOAD_BYTES})")
    return size


class RecordKind(enum.IntEnum):
    HELLO = 1  # supervisor → server, JSON ``Hello``
    STARTED = 2  # supervisor → server, JSON ``Started``
    LINES = 3  # supervisor → server, a binary batch of lines (see LINE_HEADER)
    EXITED = 4  # supervisor → server, JSON ``Exited``
    CANCEL = 5  # server → supervisor, JSON ``Cancel``
    RESUME = 6  # server → supervisor, the answer to HELLO: JSON ``Resume``
    DONE = 7  # server → supervisor, JSON ``Done``: everything is stored, forget the job


def encode(kind: RecordKind, payload: bytes) -> bytes:
    return HEADER.pack(kind, checked_size(len(payload))) + payload


def encode_json(kind: RecordKind, value: dict[str, Any]) -> bytes:
    return encode(kind, json.dumps(value).encode())


class Hello(NamedTuple):
    """The supervisor introduces itself: its job, the last sequence it wrote, its pid."""

    job_id: str
    last_sequence: int
    pid: int | None = None


class Started(NamedTuple):
    """The job's main process runs: its pid, and since when (ns since the epoch)."""

    pid: int
    started_ns: int


class Exited(NamedTuple):
    """The job's outcome, also kept in its spool's exit file."""

    outcome: str  # "completed", "failed", "cancelled" or "timeout"
    exit_code: str  # as the shell says it (128 + N: killed by signal N); "" when it never ran
    ended_ns: int  # ns since the epoch; 0: when the server hears of it
    error: str  # what went wrong, for users; "" when the outcome and exit code say it all

    @classmethod
    def of_exit_status(cls, exit_status: int, stop_reason: str | None, ended_ns: int) -> Exited:
        """The outcome of a job that ran: ``exit_status`` as ``Popen.returncode`` gives it (−N:
        killed by signal N); ``stop_reason`` the outcome when it was stopped (cancel, timeout)."""
        exit_code = str(exit_status if exit_status >= 0 else 128 - exit_status)
        if stop_reason is not None:
            return cls(stop_reason, exit_code, ended_ns, "")
        if exit_status == 0:
            return cls("completed", exit_code, ended_ns, "")
        error = f"killed by signal {signal.strsignal(-exit_status) or -exit_status}" if exit_status < 0 else ""
        return cls("failed", exit_code, ended_ns, error)

    @classmethod
    def never_ran(cls, outcome: str, error: str, ended_ns: int) -> Exited:
        """The outcome of a job that has no exit status (it never started, or nobody saw it end)."""
        return cls(outcome, "", ended_ns, error)


class Cancel(NamedTuple):
    """The server asks the supervisor to stop the job."""

    reason: str


class Resume(NamedTuple):
    """The server's answer to HELLO: the last sequence it stored; the supervisor sends the rest."""

    after_sequence: int


class Done(NamedTuple):
    """The server has stored everything of the job (or does not want it): forget it."""


class Lines(NamedTuple):
    """A LINES message: its payload of line records (``LINE_HEADER``), kept whole: the server
    stores it as it came, checked by its records' headers alone."""

    payload: bytes


JsonRecord = Hello | Started | Exited | Cancel | Resume | Done
Received = JsonRecord | Lines
RECORD_KINDS: dict[type[JsonRecord], RecordKind] = {
    Hello: RecordKind.HELLO,
    Started: RecordKind.STARTED,
    Exited: RecordKind.EXITED,
    Cancel: RecordKind.CANCEL,
    Resume: RecordKind.RESUME,
    Done: RecordKind.DONE,
}
KIND_RECORDS: dict[RecordKind, type[JsonRecord]] = {kind: record for record, kind in RECORD_KINDS.items()}
SomeRecord = TypeVar("SomeRecord", bound=JsonRecord)


def encode_record(record: JsonRecord) -> bytes:
    """A JSON message, framed, of the kind its record says."""
    return encode_json(RECORD_KINDS[type(record)], record._asdict())


def from_json(record_type: type[SomeRecord], value: dict[str, Any]) -> SomeRecord:
    """A message's record from its JSON object: each field by name (KeyError when one without
    a default is missing); other keys are left out."""
    defaults = record_type._field_defaults
    fields: list[Any] = [
        value.get(name, defaults[name]) if name in defaults else value[name] for name in record_type._fields
    ]
    return record_type(*fields)


def decode_record(record_type: type[SomeRecord], payload: bytes) -> SomeRecord:
    """A JSON message's payload as its record (ValueError when it is no JSON, KeyError or
    TypeError when it is not such a message)."""
    return from_json(record_type, json.loads(payload))


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


class RecordReader:
    """The protocol's messages from a connection's bytes, without I/O: ``feed`` the bytes as
    they are read (cut anywhere), and it returns the records they completed (``Lines`` for a
    LINES message, the JSON ones as their records), or raises ``MalformedRecord``.  The
    supervisor's event loop and the server's worker drive one each."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, chunk: bytes) -> list[Received]:
        self.buffer += chunk
        received: list[Received] = []
        while len(self.buffer) >= HEADER.size:
            kind, size = HEADER.unpack_from(self.buffer)
            end = HEADER.size + checked_size(size)
            if len(self.buffer) < end:
                break
            payload = bytes(self.buffer[HEADER.size : end])
            del self.buffer[:end]
            if kind == RecordKind.LINES:
                received.append(Lines(payload))
                continue
            record_type = KIND_RECORDS.get(kind)
            if record_type is None:
                raise MalformedRecord(f"a supervisor message of unknown kind {kind}")
            try:
                received.append(decode_record(record_type, payload))
            except (ValueError, KeyError, TypeError) as error:
                raise MalformedRecord(f"a {record_type.__name__} message that does not read ({error!r:.100})") from None
        return received


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
