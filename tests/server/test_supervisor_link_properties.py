"""Property tests for the supervisor's link (hodei_stream/server/supervisor_protocol.py's
``RecordReader``), fed bytes with no socket: any stream of messages, cut anywhere, reads back
as the records it was made of; bytes that are no such stream end in ``MalformedRecord`` (never
another exception), and a reader never returns what a stream cut short did not complete."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hodei_stream.records import LogLine
from hodei_stream.server import supervisor_protocol
from hodei_stream.server.supervisor_protocol import (
    HEADER,
    Cancel,
    Done,
    Exited,
    Hello,
    Lines,
    MalformedRecord,
    Received,
    RecordKind,
    RecordReader,
    Resume,
    Started,
)

MANY = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
texts = st.text(max_size=40)
counts = st.integers(0, 2**63 - 1)
records: st.SearchStrategy[Received] = st.one_of(
    st.builds(Hello, texts, counts, st.one_of(st.none(), st.integers(1, 2**22))),
    st.builds(Started, st.integers(1, 2**22), counts),
    st.builds(Exited, st.sampled_from(["completed", "failed", "cancelled", "timeout"]), texts, counts, texts),
    st.builds(Cancel, texts),
    st.builds(Resume, counts),
    st.just(Done()),
    st.builds(
        lambda lines: Lines(supervisor_protocol.encode_line_records(lines)),
        st.lists(st.builds(LogLine, st.just("job"), counts, counts, st.booleans(), texts), max_size=5),
    ),
)


def framed(record: Received) -> bytes:
    if isinstance(record, Lines):
        return supervisor_protocol.encode(RecordKind.LINES, record.payload)
    return supervisor_protocol.encode_record(record)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` in pieces, cut where ``points`` (taken modulo its length) say."""
    where = sorted({point % (len(data) + 1) for point in points} | {0, len(data)})
    return [data[start:end] for start, end in itertools.pairwise(where)]


def read(chunks: list[bytes]) -> list[Received]:
    reader = RecordReader()
    return [record for chunk in chunks for record in reader.feed(chunk)]


@MANY
@given(sent=st.lists(records, max_size=8), points=st.lists(st.integers(0, 10_000), max_size=12))
def test_any_stream_cut_anywhere_reads_back_as_its_records(sent: list[Received], points: list[int]) -> None:
    assert read(cut(b"".join(map(framed, sent)), points)) == sent


@MANY
@given(sent=st.lists(records, min_size=1, max_size=8), data=st.data())
def test_a_stream_cut_short_gives_only_the_records_it_completed(sent: list[Received], data: st.DataObject) -> None:
    stream = b"".join(map(framed, sent))
    end = data.draw(st.integers(0, len(stream) - 1))
    complete = list(itertools.accumulate(len(framed(record)) for record in sent))
    whole = sum(1 for size in complete if size <= end)
    assert read(cut(stream[:end], data.draw(st.lists(st.integers(0, 10_000), max_size=6)))) == sent[:whole]


def outcome(chunks: list[bytes]) -> list[Received] | str:
    """The records read, or what ``MalformedRecord`` said."""
    try:
        return read(chunks)
    except MalformedRecord as error:
        return f"malformed: {error}"


@MANY
@given(noise=st.binary(max_size=600), points=st.lists(st.integers(0, 1000), max_size=6))
def test_any_bytes_read_as_records_or_end_in_malformed_message(noise: bytes, points: list[int]) -> None:
    result = outcome(cut(noise, points))
    assert result == outcome([noise])  # wherever the bytes are cut
    assert not isinstance(result, str) or "\n" not in result


def test_a_json_message_that_is_not_its_record_is_malformed() -> None:
    for payload in (b"{", b"[]", b"{}", b'{"after_sequence": 1, "x": 2}'[:-1]):
        with pytest.raises(MalformedRecord):
            RecordReader().feed(HEADER.pack(RecordKind.RESUME, len(payload)) + payload)
    with pytest.raises(MalformedRecord):
        RecordReader().feed(HEADER.pack(0xEE, 0))
