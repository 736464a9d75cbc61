"""Log lines in the two layouts the server holds them in, and the wire's.

The server keeps a job's lines as the supervisor sent them: LINES payloads (``LINE_HEADER`` +
UTF-8 text per line, see ``supervisor_protocol``), one ``bytes`` object per batch of lines,
in memory and in SQLite alike; no object per line.  Here are what reads need of them: the
span of a payload (its first and last sequence, checked for gaps by its headers alone), its
lines as ``LogLine`` (GetLogs), and its lines as encoded gRPC messages (SubscribeLogs).

SubscribeLogs sends each line of a job to every subscriber of the job, so a payload is encoded
once into one ``bytes`` of consecutive messages and shared by all of them (``store.LineBlock``
keeps it): with 200 followers on a job, encoding per subscriber was most of the server's time.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterator

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import LogLine
from hodei_stream.server.supervisor_protocol import LINE_HEADER

HEADER_SIZE = LINE_HEADER.size
# A line's text size: the last field of its LINE_HEADER.
_SIZE = struct.Struct("!I")
_SIZE_OFFSET = HEADER_SIZE - _SIZE.size


def log_entry(line: LogLine) -> pb.JobLogEntry:
    seconds, nanos = divmod(line.captured_ns, 1_000_000_000)
    return pb.JobLogEntry(
        job_id=line.job_id,
        line=line.text,
        is_stderr=line.is_stderr,
        timestamp={"seconds": seconds, "nanos": nanos},
        sequence=line.sequence,
    )


def span(payload: bytes, after_sequence: int) -> tuple[int, int, int]:
    """Where the lines of a LINES payload with sequence > ``after_sequence`` start, and the
    first and last of those sequences (0, 0 when there is none).  Reads the headers only;
    raises ValueError when the records do not fill the payload exactly or the sequences are
    not consecutive (a gap would break "every line once, in order")."""
    if not payload:
        return 0, 0, 0
    first = LINE_HEADER.unpack_from(payload, 0)[0]
    if first <= after_sequence:
        return _span_after(payload, after_sequence)  # sent again after a reconnect: rare
    # The usual case, on every LINES message: hop from size to size, count, and compare the
    # count with the last sequence (a third faster than reading every header whole).
    size_at = _SIZE.unpack_from
    offset = previous = count = 0
    end = len(payload)
    while offset < end:
        previous = offset
        offset += HEADER_SIZE + size_at(payload, offset + _SIZE_OFFSET)[0]
        count += 1
    if offset != end:
        raise ValueError("a batch of lines cut short")
    last = LINE_HEADER.unpack_from(payload, previous)[0]
    if last - first + 1 != count:
        raise ValueError(f"{count} lines numbered {first} to {last} in one batch")
    return 0, first, last


def _span_after(payload: bytes, after_sequence: int) -> tuple[int, int, int]:
    """``span`` of a payload that starts at or before ``after_sequence``: header by header."""
    unpack = LINE_HEADER.unpack_from
    offset = start = first = last = 0
    end = len(payload)
    while offset < end:
        sequence, _ns, _stderr, size = unpack(payload, offset)
        if sequence > after_sequence:
            if not first:
                start, first = offset, sequence
            elif sequence != last + 1:
                raise ValueError(f"line {sequence} after line {last} in one batch")
            last = sequence
        offset += HEADER_SIZE + size
    if offset != end:
        raise ValueError("a batch of lines cut short")
    return (start, first, last) if first else (end, 0, 0)


def records(payload: bytes, after_sequence: int, lines: int) -> Iterator[tuple[int, int, int, str]]:
    """The first ``lines`` lines of a LINES payload with sequence > ``after_sequence``:
    sequence, capture time, is_stderr (0 or 1), text.  Text that is not UTF-8 (never from our
    supervisor) reads as U+FFFD rather than failing a read."""
    view = memoryview(payload)
    offset = 0
    while offset < len(view) and lines > 0:
        sequence, captured_ns, is_stderr, size = LINE_HEADER.unpack_from(view, offset)
        offset += HEADER_SIZE
        if sequence > after_sequence:
            yield sequence, captured_ns, is_stderr, str(view[offset : offset + size], "utf-8", "replace")
            lines -= 1
        offset += size


def payload_lines(job_id: str, payload: bytes, after_sequence: int = 0, lines: int = sys.maxsize) -> list[LogLine]:
    """``records`` as ``LogLine``s."""
    return [
        LogLine(job_id, sequence, captured_ns, bool(is_stderr), text)
        for sequence, captured_ns, is_stderr, text in records(payload, after_sequence, lines)
    ]


def encode_payload(
    job_id: str, payload: bytes, after_sequence: int = 0, lines: int = sys.maxsize
) -> tuple[bytes, array[int]]:
    """The ``records`` of a LINES payload as consecutive gRPC messages (a 5-byte prefix: not
    compressed, length; then the serialized ``JobLogEntry``) in one ``bytes``, and where each
    message starts in it (one more offset: the end).  One message object is refilled for
    every line: building a new one (with its nested timestamp) per line costs twice as much."""
    entry = pb.JobLogEntry(job_id=job_id)
    stamp = entry.timestamp
    encoded: list[bytes] = []
    offsets = array("Q", [0])
    position = 0
    for sequence, captured_ns, is_stderr, text in records(payload, after_sequence, lines):
        entry.line = text
        entry.is_stderr = bool(is_stderr)
        entry.sequence = sequence
        stamp.seconds, stamp.nanos = divmod(captured_ns, 1_000_000_000)
        message = entry.SerializeToString()
        encoded.append(b"\x00" + len(message).to_bytes(4, "big"))
        encoded.append(message)
        position += 5 + len(message)
        offsets.append(position)
    return b"".join(encoded), offsets
