"""The few Hodei messages stream-logs sends and reads, in protobuf's wire format, without protobuf.

Why: importing the generated code (``hodei_pb2``) costs ~45 ms of start-up (protobuf's
descriptor pool and message classes), a third of stream-logs' time to its first line, while
the streamer needs three small requests and three answers.  The generated classes stay the
reference: ``tests/unit/test_messages.py`` encodes random messages with them and decodes with
this module, and the reverse, so the two cannot drift.  One place uses them: once
``BULK_BYTES`` of log entries arrive at once (a history replayed, a burst), the import is
paid once (after the first 4 MiB) and protobuf's parser, in C, reads each entry faster.

Encoded: ``SubscribeLogsRequest``, ``GetLogsRequest``, ``GetJobRequest``, ``ListJobsRequest``
(byte for byte what ``SerializeToString`` gives).  Decoded: ``JobLogEntry`` (straight into a
``LogLine``), ``GetLogsResponse``, the part of ``GetJobResponse`` the streamer shows (``Job``),
and, for jobs chosen by what they are, the name and tags of a ``GetJobResponse``'s definition
(``Definition``) and ``ListJobsResponse``'s ids, names and statuses (``Summary``).  Decoding
follows protobuf's rules: unknown fields (any wire type, groups too) and known fields of an
unexpected wire type are skipped, the last value of a scalar wins, a message field given twice
is merged, ints are truncated to their 32 or 64 bits, strings must be UTF-8, groups nest at most
``MAX_DEPTH`` deep.  Bytes that are not a message end in ``DecodeError`` with a one-line reason.
Fields the streamer never reads (``GetJobResponse.job``, most of ``JobExecution``) are skipped
unread, so a malformed value inside them is not noticed here, where the generated code would
refuse the whole message.
"""

from __future__ import annotations

from typing import NamedTuple

from hodei_stream.records import LogLine

_MASK64 = (1 << 64) - 1
# How deep unknown groups may nest: protobuf's own default recursion limit.  A message
# nested deeper ends in DecodeError, as protobuf refuses it, not in Python's RecursionError.
MAX_DEPTH = 100
# Wire types (protobuf encoding): VARINT, I64, LEN, SGROUP, EGROUP, I32.
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5


class DecodeError(ValueError):
    """Bytes that are not the message expected; the message is one line."""


class Execution(NamedTuple):
    """What the end line shows of a ``JobExecution``."""

    exit_code: str
    error_message: str
    start_ns: int | None  # None when the execution has no start_time
    end_ns: int | None

    @property
    def duration_s(self) -> float | None:
        if self.start_ns is None or self.end_ns is None:
            return None
        return (self.end_ns - self.start_ns) / 1e9


class Job(NamedTuple):
    """What the streamer reads of a ``GetJobResponse``: the status and the executions."""

    status: int  # a hodei.JobStatus number (api.FINAL_STATUSES, api.status_name)
    executions: list[Execution]


class Definition(NamedTuple):
    """What --name / --tag / --prefix read of a ``GetJobResponse``'s ``JobDefinition``."""

    name: str
    tags: list[str]


class Summary(NamedTuple):
    """What --all / --name / --tag read of a ``JobSummary``."""

    job_id: str
    name: str
    status: int


# ---- encoding -------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= _MASK64  # a negative int32/int64 goes out as ten bytes, as protobuf sends it
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(field: int, text: str) -> bytes:
    data = text.encode()
    return _varint(field << 3 | _LEN) + _varint(len(data)) + data if data else b""


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3 | _VARINT) + _varint(value) if value else b""


def encode_subscribe(job_id: str, include_history: bool, tail_lines: int = 0) -> bytes:
    """A ``SubscribeLogsRequest``."""
    return _string(1, job_id) + _int(2, int(include_history)) + _int(3, tail_lines)


def encode_get_logs(job_id: str, since_sequence: int, limit: int) -> bytes:
    """A ``GetLogsRequest``."""
    return _string(1, job_id) + _int(2, limit) + _int(3, since_sequence)


def encode_get_job(job_id: str) -> bytes:
    """A ``GetJobRequest`` (its ``JobId`` always present, as the generated code sends it)."""
    inner = _string(1, job_id)
    return b"\x0a" + _varint(len(inner)) + inner


def encode_list_jobs(limit: int, search_term: str = "") -> bytes:
    """A ``ListJobsRequest`` of the newest ``limit`` jobs, of every status; ``search_term``
    (an optional field: sent when not empty)."""
    data = search_term.encode()
    term = b"\x22" + _varint(len(data)) + data if data else b""
    return _int(1, limit) + term


# ---- decoding -------------------------------------------------------------------------------


def _read_varint(data: bytes | bytearray, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` (the 64 bits protobuf keeps) and the position after it."""
    result = shift = 0
    while True:
        if pos >= end:
            raise DecodeError("a truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("a varint longer than 10 bytes")


def _read_tag(data: bytes | bytearray, pos: int, end: int) -> tuple[int, int]:
    """A field's tag: a varint of at most five bytes and 32 bits, as protobuf reads it."""
    tag, after = _read_varint(data, pos, end)
    if after - pos > 5 or tag >> 32:
        raise DecodeError("a field tag longer than 32 bits")
    return tag, after


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _length(data: bytes | bytearray, pos: int, end: int) -> tuple[int, int]:
    """A length-delimited field's payload: its end and where it starts."""
    size, pos = _read_varint(data, pos, end)
    if size > end - pos:
        raise DecodeError("a field longer than its message")
    return pos + size, pos


def _skip(data: bytes | bytearray, pos: int, end: int, tag: int, depth: int = 0) -> int:
    """The position after the value of a field that is not read (``tag`` already read);
    ``depth``: how many groups enclose it."""
    kind = tag & 7
    if tag >> 3 == 0:
        raise DecodeError("field number 0")
    if kind == _VARINT:
        return _read_varint(data, pos, end)[1]
    if kind == _LEN:
        return _length(data, pos, end)[0]
    if kind in (_I64, _I32):
        pos += 8 if kind == _I64 else 4
        if pos > end:
            raise DecodeError("a truncated fixed-size field")
        return pos
    if kind == _SGROUP:
        if depth >= MAX_DEPTH:
            raise DecodeError(f"groups nested more than {MAX_DEPTH} deep")
        while True:
            if pos >= end:
                raise DecodeError("a group without its end")
            inner, pos = _read_tag(data, pos, end)
            if inner & 7 == _EGROUP:
                if inner >> 3 != tag >> 3:
                    raise DecodeError("a group ended by another field's end")
                return pos
            pos = _skip(data, pos, end, inner, depth + 1)
    raise DecodeError(f"wire type {kind} where a field starts")


def _text(data: bytes | bytearray, pos: int, end: int) -> str:
    try:
        return data[pos:end].decode()
    except UnicodeDecodeError:
        raise DecodeError("a string that is not UTF-8") from None


def _timestamp(data: bytes | bytearray, pos: int, end: int, seconds: int, nanos: int) -> tuple[int, int]:
    """A ``google.protobuf.Timestamp`` merged into (``seconds``, ``nanos``)."""
    while pos < end:
        tag, pos = _read_tag(data, pos, end)
        if tag == 0x08:
            value, pos = _read_varint(data, pos, end)
            seconds = _signed(value, 64)
        elif tag == 0x10:
            value, pos = _read_varint(data, pos, end)
            nanos = _signed(value, 32)
        else:
            pos = _skip(data, pos, end, tag)
    return seconds, nanos


def _entry(data: bytes | bytearray, pos: int, end: int) -> LogLine:
    job_id = line = ""
    is_stderr = False
    seconds = nanos = sequence = 0
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x12:  # line: the one field of any size; a short length is one byte
            size = data[pos] if pos < end else 0x80
            if size < 0x80 and pos + 1 + size <= end:
                pos += 1
                stop = pos + size
            else:
                stop, pos = _length(data, pos, end)
            line = _text(data, pos, stop)
            pos = stop
        elif tag == 0x0A:
            stop, pos = _length(data, pos, end)
            job_id = _text(data, pos, stop)
            pos = stop
        elif tag == 0x18:
            value, pos = _read_varint(data, pos, end)
            is_stderr = value != 0
        elif tag == 0x22:
            stop, pos = _length(data, pos, end)
            seconds, nanos = _timestamp(data, pos, stop, seconds, nanos)
            pos = stop
        elif tag == 0x28:
            value, pos = _read_varint(data, pos, end)
            sequence = _signed(value, 64)
        else:
            pos = _skip(data, pos, end, tag)
    return LogLine(job_id, sequence, seconds * 1_000_000_000 + nanos, is_stderr, line)


def _streamed_entry(data: bytes | bytearray, start: int, end: int) -> LogLine:
    """One entry of a stream that neither fast path read, by the general reader; a
    ``DecodeError`` when it does not decode (IndexError: it ends before its fields do)."""
    try:
        return _entry(data, start, end)
    except IndexError:
        raise DecodeError("a truncated JobLogEntry") from None


_new_line = tuple.__new__  # LogLine(...) without the Python frame of its __new__
# The last second decoded: its varint's five bytes and the second in ns (one tuple: threads
# following several jobs each read and replace it whole).
# Never empty: a second compared in place must be a whole varint (this one: 2**28 s).
_last_second: tuple[bytes, int] = (b"\x80\x80\x80\x80\x01", (1 << 28) * 1_000_000_000)
_last_job_id: tuple[bytes, str] = (b"\xff", "")  # the job id field as sent (tag, length, id), and its text


def _five_byte_varint(raw: bytes) -> int:
    """A varint of exactly five bytes (seconds from 2004 to 2514)."""
    if len(raw) != 5 or raw[4] >= 0x80 or min(raw[:4]) < 0x80:
        raise _NotCanonical
    return raw[0] & 0x7F | (raw[1] & 0x7F) << 7 | (raw[2] & 0x7F) << 14 | (raw[3] & 0x7F) << 21 | raw[4] << 28


def _small_varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` if it is below 2**31 (nanos, a sequence), unrolled: a loop costs
    twice as much here; and the position after it."""
    byte = data[pos]
    value = byte & 0x7F
    if byte >= 0x80:
        byte = data[pos + 1]
        value |= (byte & 0x7F) << 7
        if byte < 0x80:
            return value, pos + 2
        byte = data[pos + 2]
        value |= (byte & 0x7F) << 14
        if byte < 0x80:
            return value, pos + 3
        byte = data[pos + 3]
        value |= (byte & 0x7F) << 21
        if byte < 0x80:
            return value, pos + 4
        byte = data[pos + 4]
        if byte >= 0x08:  # 2**31 and more: the general reader
            raise _NotCanonical
        return value | byte << 28, pos + 5
    return value, pos + 1


class _NotCanonical(Exception):
    """The entry is not laid out as the fast path of ``decode_entries`` expects: read it the general way."""


def decode_entries(data: bytes | bytearray, pos: int, lines: list[LogLine]) -> int:
    """The ``JobLogEntry`` messages of a gRPC stream's bytes from ``pos`` on, each behind
    its 5-byte prefix, appended to ``lines`` as ``LogLine``; where it stopped: at the end, a
    message not yet whole, or a compressed one (the caller decompresses it).

    The live path, once per line, in one loop over the one buffer (a call or a copy per
    message costs here): an entry laid out as protobuf writes it (fields in order, defaults
    left out, short varints) is read straight through; anything else takes the general
    reader (``_entry``).  ``BULK_BYTES`` or more at once, after the first ``BULK_AFTER_BYTES``,
    go to ``_bulk_entries`` instead.  A message that does not decode raises ``DecodeError``,
    the lines before it already in ``lines``.
    """
    global _last_second, _last_job_id, _read_here  # caches of one; a count
    size_of_data = len(data)
    if size_of_data - pos >= BULK_BYTES and _read_here >= BULK_AFTER_BYTES:
        return _bulk_entries(data, pos, lines)
    _read_here += size_of_data - pos
    append = lines.append
    from_bytes = int.from_bytes
    new_line, log_line = _new_line, LogLine
    while True:
        start = pos + 5
        # The prefix read whole: a compressed flag (2**32 more) or fewer than five bytes
        # left end the run as a message not yet whole does.
        end = start + from_bytes(data[pos:start], "big")
        if end > size_of_data:
            break
        pos = start
        # The buffer goes on after ``end`` with the next prefix, whose first byte (0 or 1)
        # is no tag looked for here; a read past ``end`` moves ``pos`` past it, and the
        # comparisons with ``stop`` and ``end`` send the entry to the general reader.
        # IndexError: the buffer ended first.
        try:
            job_id = line = ""
            is_stderr = False
            sequence = 0
            if data[pos] == 0x0A:  # job_id, shorter than 128 bytes
                size = data[pos + 1]
                pos += 2 + size
                if size >= 0x80 or pos > end:
                    raise _NotCanonical
                # A stream's lines share their job id: compared in place (its length byte
                # included), decoded once.
                cached_field, job_id = _last_job_id
                if not data.startswith(cached_field, start):
                    job_id = data[start + 2 : pos].decode()
                    _last_job_id = bytes(data[start:pos]), job_id
            if data[pos] == 0x12:  # line: a length of one to three bytes
                size = data[pos + 1]
                pos += 2
                if size >= 0x80:
                    byte = data[pos]
                    size = size & 0x7F | (byte & 0x7F) << 7
                    pos += 1
                    if byte >= 0x80:
                        byte = data[pos]
                        if byte >= 0x80:
                            raise _NotCanonical
                        size |= byte << 14
                        pos += 1
                stop = pos + size
                if stop > end:
                    raise _NotCanonical
                line = data[pos:stop].decode()
                pos = stop
            if data[pos] == 0x18:  # is_stderr
                if data[pos + 1] != 1:
                    raise _NotCanonical
                is_stderr = True
                pos += 2
            captured_ns = 0
            if data[pos] == 0x22:  # timestamp: seconds (five bytes: 2004-2514), nanos
                stop = pos + 2 + data[pos + 1]
                pos += 2
                if stop > end or data[pos - 1] >= 0x80:
                    raise _NotCanonical
                if data[pos] == 0x08:
                    # A burst's lines share their second: its varint is compared in place,
                    # decoded once.
                    cached_raw, captured_ns = _last_second
                    if not data.startswith(cached_raw, pos + 1):
                        raw = bytes(data[pos + 1 : pos + 6])
                        captured_ns = _five_byte_varint(raw) * 1_000_000_000
                        _last_second = raw, captured_ns
                    pos += 6
                if data[pos] == 0x10:
                    nanos, pos = _small_varint(data, pos + 1)
                    captured_ns += nanos
                if pos != stop:
                    raise _NotCanonical
            if data[pos] == 0x28:  # sequence: below 2**21 read here, else by _small_varint
                byte = data[pos + 1]
                if byte < 0x80:
                    sequence, pos = byte, pos + 2
                else:
                    sequence = byte & 0x7F
                    byte = data[pos + 2]
                    if byte < 0x80:
                        sequence, pos = sequence | byte << 7, pos + 3
                    elif data[pos + 3] < 0x80:
                        sequence, pos = sequence | (byte & 0x7F) << 7 | data[pos + 3] << 14, pos + 4
                    else:
                        sequence, pos = _small_varint(data, pos + 1)
            if pos != end:
                raise _NotCanonical
            append(new_line(log_line, (job_id, sequence, captured_ns, is_stderr, line)))
        except (IndexError, UnicodeDecodeError, _NotCanonical):
            append(_streamed_entry(data, start, end))
        pos = end
    return pos


# From this many bytes at once (a history replayed, a burst), ``decode_entries`` has the
# generated code parse each entry (protobuf's parser in C): ~1 µs less a line than its own
# loop, once the import (~40 ms) is paid.  Live lines, a few at a time, never pay it, and
# neither does a history of fewer than ~60,000 lines: only once this process has read
# ``BULK_AFTER_BYTES`` by its own loop, where the import would pay for itself.
BULK_BYTES = 64 * 1024
BULK_AFTER_BYTES = 4 * 1024 * 1024
_read_here = 0  # bytes of entries decode_entries has read by its own loop


def _bulk_entries(data: bytes | bytearray, pos: int, lines: list[LogLine]) -> int:
    """``decode_entries`` by the generated code: the same lines, where it stopped."""
    from google.protobuf.message import DecodeError as NotAMessage

    from hodei_stream.proto.hodei_pb2 import JobLogEntry

    entry = JobLogEntry()  # one message parsed into again and again: no allocation a line
    parse = entry.ParseFromString
    size_of_data = len(data)
    append = lines.append
    from_bytes = int.from_bytes
    new_line, log_line = _new_line, LogLine
    while True:
        start = pos + 5
        end = start + from_bytes(data[pos:start], "big")  # a compressed flag or a short prefix: too far
        if end > size_of_data:
            return pos
        try:
            parse(data[start:end])  # type: ignore[arg-type]  # upb reads any buffer, a bytearray too
        except NotAMessage:  # the general reader says why (or reads what protobuf refused)
            append(_streamed_entry(data, start, end))
        else:
            stamp = entry.timestamp  # asked again each time: the parse replaces it
            captured_ns = stamp.seconds * 1_000_000_000 + stamp.nanos
            append(new_line(log_line, (entry.job_id, entry.sequence, captured_ns, entry.is_stderr, entry.line)))
        pos = end


def decode_entry(data: bytes) -> LogLine:
    """A ``JobLogEntry`` (one message, without its gRPC prefix) as the ``LogLine`` it carries."""
    lines: list[LogLine] = []
    decode_entries(b"\x00" + len(data).to_bytes(4, "big") + data, 0, lines)
    return lines[0]


def decode_get_logs(data: bytes) -> tuple[list[LogLine], bool]:
    """A ``GetLogsResponse``: its entries and ``has_more``."""
    entries: list[LogLine] = []
    has_more = False
    pos, end = 0, len(data)
    try:
        while pos < end:
            tag, pos = _read_tag(data, pos, end)
            if tag == 0x0A:
                stop, pos = _length(data, pos, end)
                entries.append(_entry(data, pos, stop))
                pos = stop
            elif tag == 0x10:
                value, pos = _read_varint(data, pos, end)
                has_more = value != 0
            else:
                pos = _skip(data, pos, end, tag)
    except IndexError:
        raise DecodeError("a truncated GetLogsResponse") from None
    return entries, has_more


def _execution(data: bytes, pos: int, end: int) -> Execution:
    exit_code = error_message = ""
    start: tuple[int, int] | None = None
    stop_time: tuple[int, int] | None = None
    while pos < end:
        tag, pos = _read_tag(data, pos, end)
        if tag in (0x32, 0x3A, 0x4A, 0x52):  # start_time, end_time, exit_code, error_message
            stop, pos = _length(data, pos, end)
            if tag == 0x32:
                start = _timestamp(data, pos, stop, *(start or (0, 0)))
            elif tag == 0x3A:
                stop_time = _timestamp(data, pos, stop, *(stop_time or (0, 0)))
            elif tag == 0x4A:
                exit_code = _text(data, pos, stop)
            else:
                error_message = _text(data, pos, stop)
            pos = stop
        else:
            pos = _skip(data, pos, end, tag)
    return Execution(exit_code, error_message, _ns(start), _ns(stop_time))


def _ns(stamp: tuple[int, int] | None) -> int | None:
    return None if stamp is None else stamp[0] * 1_000_000_000 + stamp[1]


def decode_job(data: bytes) -> Job:
    """A ``GetJobResponse``: its status and executions."""
    status = 0
    executions: list[Execution] = []
    pos, end = 0, len(data)
    try:
        while pos < end:
            tag, pos = _read_tag(data, pos, end)
            if tag == 0x10:
                value, pos = _read_varint(data, pos, end)
                status = _signed(value, 32)
            elif tag == 0x1A:
                stop, pos = _length(data, pos, end)
                executions.append(_execution(data, pos, stop))
                pos = stop
            else:
                pos = _skip(data, pos, end, tag)
    except IndexError:
        raise DecodeError("a truncated GetJobResponse") from None
    return Job(status, executions)


def _job_id(data: bytes, pos: int, end: int, value: str) -> str:
    """A ``JobId`` merged into ``value``."""
    while pos < end:
        tag, pos = _read_tag(data, pos, end)
        if tag == 0x0A:
            stop, pos = _length(data, pos, end)
            value = _text(data, pos, stop)
            pos = stop
        else:
            pos = _skip(data, pos, end, tag)
    return value


def _definition(data: bytes, pos: int, end: int, definition: Definition) -> Definition:
    """A ``JobDefinition``'s name and tags merged into ``definition``."""
    name, tags = definition
    while pos < end:
        tag, pos = _read_tag(data, pos, end)
        if tag in (0x12, 0x62):  # name, tags
            stop, pos = _length(data, pos, end)
            if tag == 0x12:
                name = _text(data, pos, stop)
            else:
                tags = [*tags, _text(data, pos, stop)]
            pos = stop
        else:
            pos = _skip(data, pos, end, tag)
    return Definition(name, tags)


def decode_definition(data: bytes) -> Definition:
    """A ``GetJobResponse``: its job definition's name and tags."""
    definition = Definition("", [])
    pos, end = 0, len(data)
    try:
        while pos < end:
            tag, pos = _read_tag(data, pos, end)
            if tag == 0x0A:
                stop, pos = _length(data, pos, end)
                definition = _definition(data, pos, stop, definition)
                pos = stop
            else:
                pos = _skip(data, pos, end, tag)
    except IndexError:
        raise DecodeError("a truncated GetJobResponse") from None
    return definition


def _summary(data: bytes, pos: int, end: int) -> Summary:
    job_id = name = ""
    status = 0
    while pos < end:
        tag, pos = _read_tag(data, pos, end)
        if tag in (0x0A, 0x12):  # job_id, name
            stop, pos = _length(data, pos, end)
            if tag == 0x0A:
                job_id = _job_id(data, pos, stop, job_id)
            else:
                name = _text(data, pos, stop)
            pos = stop
        elif tag == 0x18:
            value, pos = _read_varint(data, pos, end)
            status = _signed(value, 32)
        else:
            pos = _skip(data, pos, end, tag)
    return Summary(job_id, name, status)


def decode_list_jobs(data: bytes) -> list[Summary]:
    """A ``ListJobsResponse``: its jobs, in the server's order (newest first)."""
    jobs: list[Summary] = []
    pos, end = 0, len(data)
    try:
        while pos < end:
            tag, pos = _read_tag(data, pos, end)
            if tag == 0x0A:
                stop, pos = _length(data, pos, end)
                jobs.append(_summary(data, pos, stop))
                pos = stop
            else:
                pos = _skip(data, pos, end, tag)
    except IndexError:
        raise DecodeError("a truncated ListJobsResponse") from None
    return jobs
