"""Units of the embedded server without a server: line splitting, batching, frames, the store."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from itertools import pairwise
from pathlib import Path

import pytest
from grpclib import GRPCError, Status

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import LogLine
from hodei_stream.server import supervisor_protocol
from hodei_stream.server.entries import encode_payload, log_entry, payload_lines
from hodei_stream.server.fanout import Fanout
from hodei_stream.server.output_lines import MAX_LINE_BYTES, LineSplitter, cut_long_line
from hodei_stream.server.servicers import parse_job_id
from hodei_stream.server.settings import ServerSettings
from hodei_stream.server.store import PAGE_BYTES, JobRecord, JobStore
from hodei_stream.server.supervisor_link import LogBatcher


def test_splitter_keeps_what_the_job_wrote() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\tb  \nprogress 1%\rprogress 2%") == ["a\tb  "]
    assert splitter.feed(b"\n\nhalf") == ["progress 1%\rprogress 2%", ""]
    assert splitter.feed(b" \xff done\n") == ["half \ufffd done"]
    assert splitter.feed(b"no newline") == []
    assert splitter.finish() == ["no newline"]
    assert splitter.finish() == []


def test_splitter_cuts_overlong_lines_between_characters() -> None:
    splitter = LineSplitter()
    long_line = "é" * MAX_LINE_BYTES  # two bytes each: cuts must fall between characters
    pieces = splitter.feed(long_line.encode()[: 3 * MAX_LINE_BYTES // 2]) + splitter.feed(
        long_line.encode()[3 * MAX_LINE_BYTES // 2 :] + b"\n"
    )
    assert "".join(pieces) == long_line
    assert all(len(piece.encode()) <= MAX_LINE_BYTES for piece in pieces)
    assert "\ufffd" not in "".join(pieces)
    assert cut_long_line(b"") == [b""]


def test_batcher_honours_capacity_and_flush_interval() -> None:
    line = LogLine("job", 1, 0, False, "x")
    immediate = LogBatcher(capacity=1, flush_interval_s=0.01)
    assert immediate.due_in(0.0) is None
    immediate.add([line], now=5.0)
    assert immediate.due_in(5.0) == 0.0
    gathering = LogBatcher(capacity=3, flush_interval_s=0.01)
    gathering.add([line, line], now=5.0)
    assert gathering.due_in(5.004) == pytest.approx(0.006)
    assert gathering.due_in(5.02) == 0.0
    gathering.add([line], now=5.005)
    assert gathering.due_in(5.005) == 0.0
    assert len(gathering.take()) == 3 and gathering.due_in(6.0) is None


def test_frames_round_trip_in_any_chunking() -> None:
    lines = [LogLine("job", 1, 123, False, "héllo\r"), LogLine("job", 2, 456, True, "")]
    stream = supervisor_protocol.encode_record(supervisor_protocol.Hello("job", 0)) + supervisor_protocol.encode(
        supervisor_protocol.RecordKind.LINES, supervisor_protocol.encode_line_records(lines)
    )
    reader = supervisor_protocol.RecordReader()
    received = [record for byte in stream for record in reader.feed(bytes([byte]))]
    assert [type(record) for record in received] == [supervisor_protocol.Hello, supervisor_protocol.Lines]
    lines_message = received[1]
    assert isinstance(lines_message, supervisor_protocol.Lines)
    assert payload_lines("job", lines_message.payload) == lines


def test_each_json_message_reads_back_as_the_record_it_was() -> None:
    messages: list[supervisor_protocol.Message] = [
        supervisor_protocol.Hello("job", 41, 1234),
        supervisor_protocol.Started(1235, 1_700_000_000_000_000_000),
        supervisor_protocol.Exited.of_exit_status(-signal.SIGKILL, None, 5),
        supervisor_protocol.Cancel("asked by a user"),
        supervisor_protocol.Resume(40),
        supervisor_protocol.Done(),
    ]
    stream = b"".join(supervisor_protocol.encode_record(message) for message in messages)
    assert supervisor_protocol.RecordReader().feed(stream) == messages
    # A HELLO without the pid still reads (the pid has a default); one without its job does not.
    hello = supervisor_protocol.encode_json(supervisor_protocol.RecordKind.HELLO, {"job_id": "job", "last_sequence": 0})
    assert supervisor_protocol.decode_record(supervisor_protocol.Hello, hello[5:]).pid is None
    with pytest.raises(KeyError):
        supervisor_protocol.decode_record(supervisor_protocol.Resume, b"{}")


def test_an_exit_status_becomes_the_outcome_users_read() -> None:
    killed = supervisor_protocol.Exited.of_exit_status(-signal.SIGKILL, None, 1)
    assert killed == ("failed", str(128 + signal.SIGKILL), 1, "killed by signal Killed")
    assert supervisor_protocol.Exited.of_exit_status(0, None, 2) == ("completed", "0", 2, "")
    assert supervisor_protocol.Exited.of_exit_status(3, None, 3) == ("failed", "3", 3, "")
    assert supervisor_protocol.Exited.of_exit_status(-signal.SIGTERM, "timeout", 4) == ("timeout", "143", 4, "")
    assert supervisor_protocol.Exited.never_ran("cancelled", "", 5) == ("cancelled", "", 5, "")


def test_job_ids_are_validated_and_canonicalised() -> None:
    job_id = str(uuid.uuid4())
    assert parse_job_id(job_id.upper()) == job_id
    with pytest.raises(GRPCError) as error:
        parse_job_id("not-a-uuid")
    assert error.value.status == Status.INVALID_ARGUMENT


def decoded(data: bytes) -> list[pb.JobLogEntry]:
    """The JobLogEntry messages in consecutive gRPC frames (as a client's channel reads them)."""
    entries = []
    while data:
        assert data[0] == 0, "not compressed"
        size = int.from_bytes(data[1:5], "big")
        entries.append(pb.JobLogEntry.FromString(data[5 : 5 + size]))
        data = data[5 + size :]
    return entries


def test_grpc_frames_carry_the_same_entries_as_log_entry() -> None:
    lines = [LogLine("job", 1, 1_700_000_000_123_456_789, False, "héllo\r"), LogLine("job", 2, 5, True, "")]
    data, offsets = encode_payload("job", supervisor_protocol.encode_line_records(lines))
    assert decoded(data) == [log_entry(line) for line in lines]
    assert [decoded(data[start:end]) for start, end in pairwise(offsets)] == [[log_entry(line)] for line in lines]


def lines_of(job_id: str, first: int, count: int, text: str = "line") -> list[LogLine]:
    return [LogLine(job_id, n, n, False, f"{text} {n}") for n in range(first, first + count)]


def append_lines(store: JobStore, job_id: str, lines: list[LogLine]) -> None:
    """As the worker hands lines to the store: one LINES payload."""
    store.append_payload(job_id, supervisor_protocol.encode_line_records(lines))


def write_nothing_now(data: bytes) -> bool:
    """A subscriber's stream that never takes a page at once: its task sends every page itself."""
    return False


def test_store_serves_lines_at_once_and_from_disk_later(tmp_path: Path) -> None:
    settings = ServerSettings(store_recent_lines=100)
    job_id = str(uuid.uuid4())

    async def write() -> None:
        store = JobStore(tmp_path, settings, Fanout())
        assert store.create_job(JobRecord(job_id, "name", pb.JOB_STATUS_RUNNING, created_ns=1), b"")
        assert not store.create_job(JobRecord(job_id, "again", pb.JOB_STATUS_QUEUED, created_ns=2), b"")
        append_lines(store, job_id, lines_of(job_id, 1, 1000))
        assert [line.sequence for line in await store.read(job_id, 995)] == list(range(996, 1001))
        await store.close()

    async def reopen() -> None:
        fanout = Fanout()
        store = JobStore(tmp_path, settings, fanout)
        record = store.get(job_id)
        assert record is not None and record.line_count == 1000
        # It was running when its server stopped: it still is (its supervisor reconnects to
        # the worker, which is not part of this test), and new lines follow the stored ones.
        assert record.status == pb.JOB_STATUS_RUNNING and store.unfinished() == [record]
        assert [line.text for line in await store.read(job_id, 0, limit=3)] == ["line 1", "line 2", "line 3"]
        append_lines(store, job_id, lines_of(job_id, 1001, 2))
        store.update(job_id, status=pb.JOB_STATUS_COMPLETED)
        await store.sync()
        assert [line.sequence for line in await store.read(job_id, 998)] == [999, 1000, 1001, 1002]
        pages = fanout.follow(store, job_id, 990, write_nothing_now)
        followed = [entry.sequence async for page in pages for entry in decoded(page.data)]
        assert followed == list(range(991, 1003))
        await store.close()

    asyncio.run(write())
    asyncio.run(reopen())


def test_store_trims_committed_lines_and_bounds_pages(tmp_path: Path) -> None:
    settings = ServerSettings(store_recent_lines=100, store_commit_interval_s=0.0)
    job_id = str(uuid.uuid4())

    async def scenario() -> None:
        store = JobStore(tmp_path, settings, Fanout())
        store.create_job(JobRecord(job_id, "name", pb.JOB_STATUS_RUNNING, created_ns=1), b"")
        for first in range(1, 1000, 100):  # pages of 100 lines: the buffer lets go of whole pages
            append_lines(store, job_id, lines_of(job_id, first, 100))
        first_page = await store.read_encoded(job_id, 0)  # encoded before the trim
        assert first_page is not None and [entry.sequence for entry in decoded(first_page.data)] == list(range(1, 1001))
        deadline = asyncio.get_running_loop().time() + 10
        while store.logs[job_id].first_sequence == 1:  # the writer commits, then the buffer shrinks
            assert asyncio.get_running_loop().time() < deadline, "the buffer was never trimmed"
            await asyncio.sleep(0.01)
        assert store.logs[job_id].blocks[0].first_sequence > 1
        # Lines older than the buffer come from SQLite, seamlessly; encoded ones stay aligned.
        assert [line.sequence for line in await store.read(job_id, 0, limit=5000)] == list(range(1, 1001))
        for after in (0, 995):
            page = await store.read_encoded(job_id, after)
            assert page is not None and page.last_sequence == 1000
            assert [entry.sequence for entry in decoded(page.data)] == list(range(after + 1, 1001))
        assert await store.read_encoded(job_id, 1000) is None
        big = "y" * (1024 * 1024)
        append_lines(store, job_id, lines_of(job_id, 1001, 5, text=big))
        page = await store.read(job_id, 1000)
        assert 1 <= len(page) < 5 and sum(len(line.text) for line in page) <= PAGE_BYTES
        encoded = await store.read_encoded(job_id, 1000)
        assert encoded is not None and 1 <= len(decoded(encoded.data)) < 5 and len(encoded.data) <= PAGE_BYTES
        await store.close()

    asyncio.run(scenario())


def test_a_job_past_its_backlog_waits_for_the_writer(tmp_path: Path) -> None:
    settings = ServerSettings(store_max_backlog_lines=10, store_commit_interval_s=0.05)
    job_id = str(uuid.uuid4())

    async def scenario() -> None:
        store = JobStore(tmp_path, settings, Fanout())
        store.create_job(JobRecord(job_id, "name", pb.JOB_STATUS_RUNNING, created_ns=1), b"")
        await store.wait_for_backlog(job_id)  # nothing waiting: at once
        append_lines(store, job_id, lines_of(job_id, 1, 100))
        waiting = asyncio.create_task(store.wait_for_backlog(job_id))
        await asyncio.sleep(0)
        assert not waiting.done()  # 100 lines, none committed yet (the writer gathers 50 ms)
        await asyncio.wait_for(waiting, 10)
        assert store.logs[job_id].committed_sequence == 100
        await store.close()

    asyncio.run(scenario())


def test_retention_forgets_old_and_oversized_finished_jobs_never_a_running_one(tmp_path: Path) -> None:
    day_ns = 24 * 3600 * 10**9
    now_ns = time.time_ns()
    # (id, status, ended how many days ago, lines of 990 random hex digits: ~500 bytes compressed)
    jobs = [
        ("old", pb.JOB_STATUS_COMPLETED, 40, 1),
        ("running", pb.JOB_STATUS_RUNNING, None, 5),
        ("older-big", pb.JOB_STATUS_FAILED, 3, 5),
        ("newer-big", pb.JOB_STATUS_COMPLETED, 2, 5),
        ("recent", pb.JOB_STATUS_CANCELLED, 1, 1),
    ]
    ids = {name: str(uuid.uuid4()) for name, *_ in jobs}

    async def scenario() -> None:
        store = JobStore(tmp_path, ServerSettings(), Fanout())
        for name, status, days_ago, count in jobs:
            ended_ns = now_ns - days_ago * day_ns if days_ago else 0
            store.create_job(
                JobRecord(ids[name], name, status, created_ns=now_ns - 50 * day_ns, ended_ns=ended_ns), b""
            )
            lines = [LogLine(ids[name], n, n, False, os.urandom(495).hex()) for n in range(1, count + 1)]
            append_lines(store, ids[name], lines)
        await store.sync()
        # 30 days; at most 7 kB on disk (~8.9 kB in all): "old" is too old, then "older-big" makes room.
        assert await store.prune(max_age_s=30 * 24 * 3600, max_bytes=7_000) == [ids["old"], ids["older-big"]]
        assert await store.prune(max_age_s=30 * 24 * 3600, max_bytes=7_000) == []
        # However small the limit, the running job stays.
        assert await store.prune(max_age_s=0, max_bytes=0) == [ids["newer-big"], ids["recent"]]
        assert [record.job_id for record in store.jobs.values()] == [ids["running"]]
        assert len(await store.read(ids["running"], 0)) == 5
        await store.close()
        reopened = JobStore(tmp_path, ServerSettings(), Fanout())
        assert list(reopened.jobs) == [ids["running"]]
        assert await reopened.read(ids["old"], 0) == []
        await reopened.close()

    asyncio.run(scenario())


def test_definitions_stay_on_disk_and_are_read_when_asked(tmp_path: Path) -> None:
    job_id = str(uuid.uuid4())
    definition = b"d" * 10_000_000

    async def scenario() -> None:
        store = JobStore(tmp_path, ServerSettings(), Fanout())
        store.create_job(JobRecord(job_id, "name", pb.JOB_STATUS_QUEUED, created_ns=1), definition)
        assert await store.definition(job_id) == definition  # before its commit, from memory
        await store.sync()
        assert store.definitions == {}  # let go once committed
        assert await store.definition(job_id) == definition
        await store.close()
        reopened = JobStore(tmp_path, ServerSettings(), Fanout())
        assert reopened.definitions == {} and await reopened.definition(job_id) == definition
        await reopened.close()

    asyncio.run(scenario())


def test_a_final_state_is_reported_once_committed(tmp_path: Path) -> None:
    job_id = str(uuid.uuid4())

    async def scenario() -> None:
        store = JobStore(tmp_path, ServerSettings(store_commit_interval_s=0.05), Fanout())
        store.create_job(JobRecord(job_id, "name", pb.JOB_STATUS_RUNNING, created_ns=1), b"")
        append_lines(store, job_id, lines_of(job_id, 1, 3))
        store.update(job_id, status=pb.JOB_STATUS_COMPLETED, exit_code="0")
        # Known to the worker at once, to clients only once on disk.
        assert store.has_ended(job_id) and not store.is_final(job_id)
        assert store.get(job_id).status == pb.JOB_STATUS_RUNNING  # type: ignore[union-attr]
        await store.sync()
        assert store.is_final(job_id) and job_id not in store.logs  # the buffer let go too
        await store.close()

    asyncio.run(scenario())
