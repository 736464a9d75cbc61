"""stream-logs' own protobuf codec (hodei_stream/stream/messages.py) against the generated
code, which stays the reference: random messages encoded by one are decoded by the other, with
unknown fields, repeated fields, negative and large ints, non-ASCII text and random bytes."""

from __future__ import annotations

from collections.abc import Callable
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from hodei_stream import api
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import LogLine
from hodei_stream.stream import messages
from hodei_stream.stream.messages import DecodeError

MANY = settings(max_examples=200, deadline=None)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)  # non-ASCII, NUL, astral planes
LINE = st.one_of(TEXT, st.text(min_size=40, max_size=5000))  # lengths of one, two and three bytes


def varint(value: int) -> bytes:
    """``value``'s varint, as the generated code writes it (an int64 field, its tag cut off)."""
    if value == 0:
        return b"\x00"
    signed = value - 2**64 if value >= 2**63 else value
    return pb.GetLogsRequest(since_sequence=signed).SerializeToString()[1:]


def from_entry(entry: pb.JobLogEntry) -> LogLine:
    """The reference: the record the generated code's message reads as."""
    stamp = entry.timestamp
    return LogLine(
        entry.job_id, entry.sequence, stamp.seconds * 1_000_000_000 + stamp.nanos, entry.is_stderr, entry.line
    )


# A field protobuf does not know here, of any wire type (groups too): must be skipped.
UNKNOWN_FIELD = st.one_of(
    st.tuples(st.integers(6, 2**29 - 1), st.integers(0, 2**64 - 1)).map(lambda f: varint(f[0] << 3) + varint(f[1])),
    st.tuples(st.integers(6, 99), st.binary(max_size=20)).map(
        lambda f: varint(f[0] << 3 | 2) + varint(len(f[1])) + f[1]
    ),
    st.tuples(st.integers(6, 99), st.binary(min_size=8, max_size=8)).map(lambda f: varint(f[0] << 3 | 1) + f[1]),
    st.tuples(st.integers(6, 99), st.binary(min_size=4, max_size=4)).map(lambda f: varint(f[0] << 3 | 5) + f[1]),
    st.integers(6, 99).map(lambda n: varint(n << 3 | 3) + varint(7 << 3) + b"\x01" + varint(n << 3 | 4)),
)


@st.composite
def log_entries(draw: st.DrawFn) -> pb.JobLogEntry:
    entry = pb.JobLogEntry(job_id=draw(TEXT), line=draw(LINE), is_stderr=draw(st.booleans()), sequence=draw(INT64))
    if draw(st.booleans()):
        entry.timestamp.seconds = draw(st.integers(-62135596800, 253402300799))
        entry.timestamp.nanos = draw(st.integers(0, 999_999_999))
    return entry


@st.composite
def with_noise(draw: st.DrawFn, message: bytes) -> bytes:
    """``message`` with unknown fields inserted and, as often, itself repeated in part (a
    later value wins, a repeated sub-message merges)."""
    parts = [message, *draw(st.lists(UNKNOWN_FIELD, max_size=3))]
    if draw(st.booleans()):
        parts.append(message)
    return b"".join(draw(st.permutations(parts)))


def same_line(data: bytes) -> None:
    assert messages.decode_entry(data) == from_entry(pb.JobLogEntry.FromString(data))


@MANY
@given(log_entries(), st.data())
def test_entries_decode_as_the_generated_code_decodes_them(entry: pb.JobLogEntry, data: st.DataObject) -> None:
    encoded = entry.SerializeToString()
    same_line(encoded)
    same_line(data.draw(with_noise(encoded)))


@MANY
@given(st.lists(log_entries(), max_size=4), st.booleans(), st.data())
def test_get_logs_pages_decode_as_the_generated_code_decodes_them(
    entries: list[pb.JobLogEntry], has_more: bool, data: st.DataObject
) -> None:
    encoded = data.draw(with_noise(pb.GetLogsResponse(entries=entries, has_more=has_more).SerializeToString()))
    reference = pb.GetLogsResponse.FromString(encoded)
    assert messages.decode_get_logs(encoded) == ([from_entry(e) for e in reference.entries], reference.has_more)


@st.composite
def jobs(draw: st.DrawFn) -> pb.GetJobResponse:
    job = pb.GetJobResponse(status=draw(INT32))
    job.job.name = draw(TEXT)
    for _ in range(draw(st.integers(0, 3))):
        execution = job.executions.add(
            exit_code=draw(TEXT), error_message=draw(TEXT), retry_count=draw(INT32), state=draw(INT32)
        )
        execution.metadata["k"] = draw(TEXT)
        for stamp in (execution.start_time, execution.end_time):
            if draw(st.booleans()):
                stamp.seconds, stamp.nanos = draw(INT64), draw(INT32)
    return job


def reference_job(job: pb.GetJobResponse) -> messages.Job:
    def ns(execution: pb.JobExecution, name: str) -> int | None:
        if not execution.HasField(name):
            return None
        stamp = getattr(execution, name)
        return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)

    executions = [
        messages.Execution(e.exit_code, e.error_message, ns(e, "start_time"), ns(e, "end_time")) for e in job.executions
    ]
    return messages.Job(job.status, executions)


@MANY
@given(jobs(), st.data())
def test_jobs_decode_as_the_generated_code_decodes_them(job: pb.GetJobResponse, data: st.DataObject) -> None:
    encoded = data.draw(with_noise(job.SerializeToString()))
    decoded = messages.decode_job(encoded)
    assert decoded == reference_job(pb.GetJobResponse.FromString(encoded))
    if decoded.executions:
        try:  # the generated code refuses to compute with a timestamp out of its range
            expected = api.duration_s(pb.GetJobResponse(executions=[job.executions[-1]]))
        except ValueError:
            return
        assert decoded.executions[-1].duration_s == expected


@MANY
@given(TEXT, st.booleans(), INT32, INT64)
def test_requests_encode_as_the_generated_code_encodes_them(
    job_id: str, include_history: bool, int32: int, int64: int
) -> None:
    assert (
        messages.encode_subscribe(job_id, include_history, int32)
        == pb.SubscribeLogsRequest(job_id=job_id, include_history=include_history, tail_lines=int32).SerializeToString()
    )
    assert (
        messages.encode_get_logs(job_id, int64, int32)
        == pb.GetLogsRequest(job_id=job_id, since_sequence=int64, limit=int32).SerializeToString()
    )
    assert messages.encode_get_job(job_id) == pb.GetJobRequest(job_id=pb.JobId(value=job_id)).SerializeToString()


def outcome(decode: object, data: bytes) -> object:
    try:
        return decode(data)  # type: ignore[operator]
    except DecodeError as error:
        assert "\n" not in str(error) and str(error)  # noqa: PT017 (whichever input raised it)
        return DecodeError
    except Exception:  # noqa: BLE001 (the generated code's DecodeError, whatever its class)
        return DecodeError


def prefixed(message: bytes, compressed: bool = False) -> bytes:
    """``message`` as a gRPC stream carries it: its flag and length first."""
    return bytes([compressed]) + len(message).to_bytes(4, "big") + message


@MANY
@given(
    st.lists(st.one_of(log_entries().map(lambda e: e.SerializeToString()), st.binary(max_size=30)), max_size=6),
    st.integers(0, 400),
    st.booleans(),
    st.booleans(),
)
def test_a_run_of_messages_decodes_in_place_as_each_alone(
    bodies: list[bytes], cut: int, compressed: bool, bulk: bool
) -> None:
    """A stream's bytes, cut anywhere or stopped by a compressed message: every whole message
    before the stop decodes as it does alone, the stop is the next message's start, and a
    message that does not decode raises with the lines before it kept; read by the loop, and
    (``bulk``: as a replay's long run is) by the generated code."""
    stopper = prefixed(b"\x0a\x01x", compressed=True) if compressed else b""
    stream = b"".join(prefixed(body) for body in bodies) + stopper
    data = bytearray(b"junk" + stream[:cut])
    ends = [4]
    for body in bodies:
        ends.append(ends[-1] + 5 + len(body))
    whole = [body for body, end in zip(bodies, ends[1:], strict=True) if end <= len(data)]
    expected = [outcome(messages.decode_entry, body) for body in whole]  # each alone: by the loop
    lines: list[LogLine] = []
    with (
        patch.object(messages, "BULK_BYTES", 0 if bulk else messages.BULK_BYTES),
        patch.object(messages, "BULK_AFTER_BYTES", 0 if bulk else messages.BULK_AFTER_BYTES),
    ):
        if DecodeError in expected:
            try:
                messages.decode_entries(data, 4, lines)
            except DecodeError:
                pass
            else:
                raise AssertionError("a message that does not decode was read")
            assert lines == expected[: expected.index(DecodeError)]
        else:
            assert messages.decode_entries(data, 4, lines) == ends[len(whole)]
            assert lines == expected


@MANY
@given(
    st.one_of(
        st.binary(max_size=60),
        log_entries().map(lambda e: e.SerializeToString()[:-1]),
        # A short pattern repeated into kilobytes: deep nests, long runs of fields.
        st.tuples(st.binary(min_size=1, max_size=4), st.integers(1, 3000)).map(lambda p: p[0] * p[1]),
    )
)
def test_malformed_bytes_end_in_a_one_line_decode_error(data: bytes) -> None:
    """Random bytes: a one-line ``DecodeError`` exactly when the generated code refuses them
    too (for the messages read whole), else the same answer."""
    reference = outcome(lambda d: from_entry(pb.JobLogEntry.FromString(d)), data)
    assert outcome(messages.decode_entry, data) == reference
    page = outcome(pb.GetLogsResponse.FromString, data)
    ours = outcome(messages.decode_get_logs, data)
    assert ours == (page if page is DecodeError else ([from_entry(e) for e in page.entries], page.has_more))
    job = outcome(pb.GetJobResponse.FromString, data)
    ours_job = outcome(messages.decode_job, data)
    # The job's definition and most of an execution are skipped unread: where the generated
    # code refuses a malformed value inside them, this module may still answer.
    if job is not DecodeError:
        assert ours_job == reference_job(job)


def test_the_status_table_is_the_protos() -> None:
    assert set(api.STATUS_NAMES) == {name.removeprefix("JOB_STATUS_") for name in pb.JobStatus.keys()}  # noqa: SIM118 (an EnumTypeWrapper)
    for name, number in pb.JobStatus.items():
        assert api.status_name(number) == name.removeprefix("JOB_STATUS_")
    final = {pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED, pb.JOB_STATUS_TIMEOUT}
    assert final == api.FINAL_STATUSES
    assert api.JOB_STATUS_COMPLETED == pb.JOB_STATUS_COMPLETED


@MANY
@given(
    st.integers(1, 6000),
    st.integers(1, 99),
    st.booleans(),
    st.sampled_from([messages.decode_entry, messages.decode_get_logs, messages.decode_job]),
)
def test_nested_groups_at_any_depth_decode_as_the_generated_code_does(
    depth: int, field: int, closed: bool, decode: Callable[[bytes], object]
) -> None:
    """Groups nested up to thousands deep (a hostile server): as protobuf, up to 100 levels
    are skipped and more end in a one-line ``DecodeError``, never in a RecursionError."""
    start, end = varint(field << 3 | 3), varint(field << 3 | 4)
    data = start * depth + (end * depth if closed else b"")
    reference = outcome(pb.JobLogEntry.FromString, data)
    try:  # only DecodeError: a RecursionError fails the test
        decode(data)
        ours: object = None
    except DecodeError:
        ours = DecodeError
    assert (ours is DecodeError) == (reference is DecodeError)
    assert (ours is DecodeError) == (not closed or depth > messages.MAX_DEPTH)


@st.composite
def listings(draw: st.DrawFn) -> pb.ListJobsResponse:
    listing = pb.ListJobsResponse(total_count=draw(INT32))
    for _ in range(draw(st.integers(0, 4))):
        summary = listing.jobs.add(name=draw(TEXT), status=draw(INT32), progress_percentage=draw(INT32))
        if draw(st.booleans()):
            summary.job_id.value = draw(TEXT)
        if draw(st.booleans()):
            summary.created_at.seconds = draw(st.integers(0, 2**40))
    return listing


@MANY
@given(listings(), st.data())
def test_listings_decode_as_the_generated_code_decodes_them(listing: pb.ListJobsResponse, data: st.DataObject) -> None:
    encoded = data.draw(with_noise(listing.SerializeToString()))
    reference = pb.ListJobsResponse.FromString(encoded)
    assert messages.decode_list_jobs(encoded) == [
        messages.Summary(job.job_id.value, job.name, job.status) for job in reference.jobs
    ]


@MANY
@given(jobs(), st.lists(TEXT, max_size=4), st.data())
def test_definitions_decode_as_the_generated_code_decodes_them(
    job: pb.GetJobResponse, tags: list[str], data: st.DataObject
) -> None:
    job.job.tags.extend(tags)
    encoded = data.draw(with_noise(job.SerializeToString()))
    # A definition given twice is merged, as protobuf merges a message field.
    twice = encoded + pb.GetJobResponse(job=pb.JobDefinition(tags=["again"])).SerializeToString()
    for message in (encoded, twice):
        reference = pb.GetJobResponse.FromString(message)
        assert messages.decode_definition(message) == messages.Definition(reference.job.name, list(reference.job.tags))


@MANY
@given(INT32, TEXT)
def test_list_requests_encode_as_the_generated_code_encodes_them(limit: int, search_term: str) -> None:
    expected = pb.ListJobsRequest(limit=limit, search_term=search_term or None).SerializeToString()
    assert messages.encode_list_jobs(limit, search_term) == expected


@MANY
@given(st.binary(max_size=60))
def test_malformed_listings_and_definitions_end_in_a_one_line_decode_error(data: bytes) -> None:
    listing = outcome(pb.ListJobsResponse.FromString, data)
    if listing is not DecodeError:
        assert outcome(messages.decode_list_jobs, data) == [
            messages.Summary(job.job_id.value, job.name, job.status) for job in listing.jobs
        ]
    job = outcome(pb.GetJobResponse.FromString, data)
    if job is not DecodeError:
        assert outcome(messages.decode_definition, data) == messages.Definition(job.job.name, list(job.job.tags))
