"""The store's pages: a job's lines kept and stored as LINES payloads (compressed on disk),
read back a line, a page or a part of one at a time, from memory and from SQLite; retention by
the bytes on disk; and the state folders from before pages (one row per line, converted) and
from before compression (read as they are)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import LogLine
from hodei_stream.server import supervisor_protocol
from hodei_stream.server.entries import payload_lines, span
from hodei_stream.server.fanout import Fanout
from hodei_stream.server.settings import ServerSettings
from hodei_stream.server.store import DATABASE_NAME, PAGE_BYTES, SCHEMA, JobRecord, JobStore
from hodei_stream.server.store.schema import STORED, ZLIB

# The log table of the store before pages (its ``jobs`` table is the same as now).
LINES_SCHEMA = """
DROP TABLE log_pages;
CREATE TABLE log_lines (
    job_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    captured_ns INTEGER NOT NULL,
    is_stderr INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (job_id, sequence)
) WITHOUT ROWID;
"""

# ``log_pages`` before its rows were compressed (the ``jobs`` table is the same as now).
UNCOMPRESSED_SCHEMA = """
DROP TABLE log_pages;
CREATE TABLE log_pages (
    job_id TEXT NOT NULL,
    first_sequence INTEGER NOT NULL,
    last_sequence INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (job_id, last_sequence)
);
"""


def lines_of(job_id: str, first: int, count: int, text: str = "line") -> list[LogLine]:
    return [LogLine(job_id, n, n * 1000, n % 3 == 0, f"{text} {n} é") for n in range(first, first + count)]


def payload(lines: list[LogLine]) -> bytes:
    return supervisor_protocol.encode_line_records(lines)


def entries(data: bytes) -> list[pb.JobLogEntry]:
    """The JobLogEntry messages in consecutive gRPC frames."""
    found = []
    while data:
        size = int.from_bytes(data[1:5], "big")
        found.append(pb.JobLogEntry.FromString(data[5 : 5 + size]))
        data = data[5 + size :]
    return found


async def every_line(store: JobStore, job_id: str, after: int, limit: int) -> list[LogLine]:
    """All lines after ``after`` as GetLogs pages through them, ``limit`` at a time."""
    lines: list[LogLine] = []
    while page := await store.read(job_id, after, limit):
        lines += page
        after = page[-1].sequence
    return lines


async def every_entry(store: JobStore, job_id: str, after: int) -> list[pb.JobLogEntry]:
    found: list[pb.JobLogEntry] = []
    while page := await store.read_encoded(job_id, after):
        found += entries(page.data)
        assert found[-1].sequence == page.last_sequence
        after = page.last_sequence
    return found


def disk_bytes(home: Path, job_id: str) -> int:
    """The bytes of a job's log pages in the database, as stored (compressed or not)."""
    with sqlite3.connect(home / DATABASE_NAME) as database:
        (size,) = database.execute("SELECT sum(length(payload)) FROM log_pages WHERE job_id = ?", (job_id,)).fetchone()
    database.close()
    return int(size)


def stored_rows(home: Path, job_id: str) -> list[tuple[int, int, int, int]]:
    """A job's ``log_pages`` rows: first and last sequence, payload bytes as stored, compression."""
    with sqlite3.connect(home / DATABASE_NAME) as database:
        rows = database.execute(
            "SELECT first_sequence, last_sequence, length(payload), compression FROM log_pages"
            " WHERE job_id = ? ORDER BY last_sequence",
            (job_id,),
        ).fetchall()
    database.close()
    return rows


def new_store(home: Path, **settings: object) -> JobStore:
    return JobStore(home, ServerSettings(**settings), Fanout())  # type: ignore[arg-type]


def store_finished_job(store: JobStore, job_id: str, lines: list[LogLine], block_lines: int, ended_ns: int = 1) -> None:
    """A finished job with these lines, handed to the store in payloads of ``block_lines``."""
    store.create_job(JobRecord(job_id, "name", pb.JOB_STATUS_RUNNING, created_ns=1), b"")
    for start in range(0, len(lines), block_lines):
        store.append_payload(job_id, payload(lines[start : start + block_lines]))
    store.update(job_id, status=pb.JOB_STATUS_COMPLETED, ended_ns=ended_ns)


def test_span_reads_headers_and_refuses_gaps_and_cut_payloads() -> None:
    data = payload(lines_of("j", 5, 4))
    assert span(data, 0) == (0, 5, 8)
    start, first, last = span(data, 6)
    assert (first, last) == (7, 8) and payload_lines("j", data[start:])[0].sequence == 7
    assert span(data, 8) == (len(data), 0, 0)
    with pytest.raises(ValueError, match="3 lines numbered 1 to 4"):
        span(payload(lines_of("j", 1, 2) + lines_of("j", 4, 1)), 0)
    with pytest.raises(ValueError, match="line 4 after line 2"):
        span(payload(lines_of("j", 1, 2) + lines_of("j", 4, 1)), 1)
    assert span(b"", 0) == (0, 0, 0)
    with pytest.raises(ValueError, match="cut short"):
        span(data[:-1], 0)


def test_pages_read_across_their_boundaries_from_memory_and_disk(tmp_path: Path) -> None:
    job_id = str(uuid.uuid4())
    expected = lines_of(job_id, 1, 100)

    async def scenario() -> None:
        # Pages of 1, 2, 3… lines; a tiny recent window, so that the oldest come from disk.
        store = new_store(tmp_path, store_recent_lines=20, store_commit_interval_s=0.0)
        store.create_job(JobRecord(job_id, "name", pb.JOB_STATUS_RUNNING, created_ns=1), b"")
        first, size = 1, 1
        while first <= 100:
            count = min(size, 101 - first)
            store.append_payload(job_id, payload(expected[first - 1 : first - 1 + count]))
            first, size = first + count, size + 1
        for after in (0, 1, 2, 3, 5, 6, 44, 45, 46, 99):
            assert await every_line(store, job_id, after, limit=7) == expected[after:]
            assert [entry.sequence for entry in await every_entry(store, job_id, after)] == list(range(after + 1, 101))
        await store.sync()
        deadline = asyncio.get_running_loop().time() + 10
        while store.logs[job_id].first_sequence == 1:
            assert asyncio.get_running_loop().time() < deadline, "the buffer was never trimmed"
            await asyncio.sleep(0.01)
        for after in (0, 1, 2, 3, 5, 6, 44, 45, 46, 99):
            assert await every_line(store, job_id, after, limit=7) == expected[after:]
            got = await every_entry(store, job_id, after)
            assert [(entry.sequence, entry.line, entry.is_stderr) for entry in got] == [
                (line.sequence, line.text, line.is_stderr) for line in expected[after:]
            ]
        # Sent again after a reconnect: what is stored already is skipped, the rest taken.
        store.append_payload(job_id, payload(expected[95:] + lines_of(job_id, 101, 2)))
        assert store.get(job_id).line_count == 102  # type: ignore[union-attr]
        with pytest.raises(ValueError, match="line 104 after line 102"):
            store.append_payload(job_id, payload(lines_of(job_id, 104, 1)))
        await store.close()

    asyncio.run(scenario())


def test_a_page_bigger_than_a_response_is_split_and_resumed_in_its_middle(tmp_path: Path) -> None:
    job_id = str(uuid.uuid4())
    # One payload of 8 lines of 1 MiB: a response holds 2 of them (3 MiB at most).
    expected = lines_of(job_id, 1, 8, text="w" * (1024 * 1024))

    async def scenario() -> None:
        store = new_store(tmp_path, store_recent_lines=1, store_recent_bytes=0, store_commit_interval_s=5.0)
        store.create_job(JobRecord(job_id, "name", pb.JOB_STATUS_RUNNING, created_ns=1), b"")
        store.append_payload(job_id, payload(expected))
        for source in ("memory", "disk"):
            after, pages = 0, 0
            while page := await store.read(job_id, after):
                assert 1 <= len(page) < 8 and sum(len(line.text) for line in page) <= PAGE_BYTES
                assert page == expected[after : after + len(page)]
                after, pages = page[-1].sequence, pages + 1
            assert after == 8 and pages > 1, source
            after = 0
            while encoded := await store.read_encoded(job_id, after):
                assert len(encoded.data) <= PAGE_BYTES
                assert [entry.sequence for entry in entries(encoded.data)] == list(
                    range(after + 1, encoded.last_sequence + 1)
                )
                after = encoded.last_sequence
            assert after == 8, source
            await store.sync()
            deadline = asyncio.get_running_loop().time() + 10
            while store.logs[job_id].blocks:  # all committed: nothing kept in memory
                assert asyncio.get_running_loop().time() < deadline, "the buffer was never trimmed"
                await asyncio.sleep(0.01)
        await store.close()

    asyncio.run(scenario())


def test_a_state_folder_from_before_pages_is_converted_once(tmp_path: Path) -> None:
    finished, running = str(uuid.uuid4()), str(uuid.uuid4())
    # The finished job's lines have a gap (deleted by hand, say): kept as they are.
    stored = {finished: lines_of(finished, 1, 3000) + lines_of(finished, 3005, 10), running: lines_of(running, 1, 50)}
    with sqlite3.connect(tmp_path / DATABASE_NAME) as database:
        database.executescript(SCHEMA + LINES_SCHEMA)
        for job_id, status, line_count in (
            (finished, pb.JOB_STATUS_COMPLETED, 3014),
            (running, pb.JOB_STATUS_RUNNING, 40),  # its record lagged behind its lines
        ):
            database.execute(
                "INSERT INTO jobs VALUES (?, 'name', x'', ?, 1, 2, 3, '0', '', ?)", (job_id, status, line_count)
            )
        database.executemany(
            "INSERT INTO log_lines VALUES (?, ?, ?, ?, ?)", [tuple(line) for lines in stored.values() for line in lines]
        )
    database.close()

    async def scenario() -> None:
        store = new_store(tmp_path)
        assert store.get(running).line_count == 50  # type: ignore[union-attr]
        assert await every_line(store, finished, 0, limit=1000) == stored[finished]
        assert await every_line(store, finished, 3002, limit=1000) == stored[finished][3000:]
        assert [entry.sequence for entry in await every_entry(store, finished, 2990)] == [
            line.sequence for line in stored[finished][2990:]
        ]
        assert await every_line(store, running, 10, limit=1000) == stored[running][10:]
        # Lines of the running job's supervisor go on after the converted ones.
        store.append_payload(running, payload(lines_of(running, 51, 5)))
        store.update(running, status=pb.JOB_STATUS_COMPLETED)
        await store.sync()
        assert await every_line(store, running, 45, limit=1000) == lines_of(running, 46, 10)
        # Retention sizes the converted pages by their bytes on disk: to the byte.
        running_size = disk_bytes(tmp_path, running)
        assert await store.prune(max_age_s=1e12, max_bytes=running_size) == [finished]
        assert await store.prune(max_age_s=1e12, max_bytes=running_size) == []
        assert await store.prune(max_age_s=1e12, max_bytes=running_size - 1) == [running]
        await store.close()

    asyncio.run(scenario())
    with sqlite3.connect(tmp_path / DATABASE_NAME) as database:
        tables = {name for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "log_lines" not in tables and "log_pages" in tables
        assert database.execute("SELECT count(*) FROM log_pages").fetchone() == (0,)
    database.close()

    async def reopen() -> None:
        reopened = new_store(tmp_path)  # a second opening has nothing to convert
        assert reopened.jobs == {}
        await reopened.close()

    asyncio.run(reopen())


def test_pages_are_compressed_on_disk_and_read_from_the_middle_of_a_row(tmp_path: Path) -> None:
    job_id = str(uuid.uuid4())
    expected = lines_of(job_id, 1, 20_000, text="line number")

    async def scenario() -> None:
        store = new_store(tmp_path, store_commit_interval_s=5.0)  # one batch: rows of several payloads
        store_finished_job(store, job_id, expected, block_lines=700)
        await store.sync()
        assert job_id not in store.logs  # all on disk: every read below decompresses
        rows = stored_rows(tmp_path, job_id)
        assert len(rows) > 3 and {compression for *_, compression in rows} == {ZLIB}
        assert [first for first, *_ in rows] == [1] + [last + 1 for _, last, *_ in rows[:-1]]
        assert rows[-1][1] == 20_000
        text_bytes = sum(len(line.text.encode()) + 1 for line in expected)  # (a newline each, as a file has)
        assert sum(size for _, _, size, _ in rows) < 0.5 * text_bytes
        second_row, third_row = rows[1][0], rows[2][0]
        # The start of a row, the middle of a payload and of a row, the ends of both.
        for after in (0, 1, 699, 700, second_row - 1, second_row, second_row + 350, third_row - 2, 19_999):
            assert await store.read(job_id, after, limit=7) == expected[after : after + 7]
            assert await every_line(store, job_id, after, limit=5000) == expected[after:]
            got = await every_entry(store, job_id, after)
            assert [(entry.sequence, entry.line, entry.is_stderr) for entry in got] == [
                (line.sequence, line.text, line.is_stderr) for line in expected[after:]
            ]
        assert await store.read(job_id, 20_000) == []
        await store.close()

    asyncio.run(scenario())


def test_retention_counts_the_bytes_on_disk_not_the_text(tmp_path: Path) -> None:
    older, newer = str(uuid.uuid4()), str(uuid.uuid4())
    lines = {job_id: lines_of(job_id, 1, 5000, text="line number") for job_id in (older, newer)}
    text_bytes = sum(len(line.text.encode()) for line in lines[newer])

    async def scenario() -> None:
        store = new_store(tmp_path)
        now_ns = time.time_ns()
        store_finished_job(store, older, lines[older], block_lines=1000, ended_ns=now_ns - 2)
        store_finished_job(store, newer, lines[newer], block_lines=1000, ended_ns=now_ns - 1)
        await store.sync()
        on_disk = {job_id: disk_bytes(tmp_path, job_id) for job_id in (older, newer)}
        # Both jobs fit, compressed, where the text of one would not.
        assert on_disk[older] + on_disk[newer] < text_bytes
        assert await store.prune(max_age_s=1e12, max_bytes=text_bytes) == []
        assert await store.prune(max_age_s=1e12, max_bytes=on_disk[older] + on_disk[newer] - 1) == [older]
        assert await store.prune(max_age_s=1e12, max_bytes=on_disk[newer]) == []
        assert await every_line(store, newer, 0, limit=5000) == lines[newer]
        await store.close()

    asyncio.run(scenario())


def test_a_state_folder_from_before_compression_is_read_and_written_on(tmp_path: Path) -> None:
    finished, running = str(uuid.uuid4()), str(uuid.uuid4())
    stored = {finished: lines_of(finished, 1, 3000), running: lines_of(running, 1, 50)}
    with sqlite3.connect(tmp_path / DATABASE_NAME) as database:
        database.executescript(SCHEMA + UNCOMPRESSED_SCHEMA)
        for job_id, status in ((finished, pb.JOB_STATUS_COMPLETED), (running, pb.JOB_STATUS_RUNNING)):
            database.execute(
                "INSERT INTO jobs VALUES (?, 'name', x'', ?, 1, 2, 3, '0', '', ?)",
                (job_id, status, len(stored[job_id])),
            )
        for job_id, lines in stored.items():
            for start in range(0, len(lines), 1000):
                block = lines[start : start + 1000]
                database.execute(
                    "INSERT INTO log_pages VALUES (?, ?, ?, ?)",
                    (job_id, block[0].sequence, block[-1].sequence, payload(block)),
                )
    database.close()
    added = lines_of(running, 51, 1000)

    async def scenario() -> None:
        store = new_store(tmp_path)
        assert store.get(running).line_count == 50  # type: ignore[union-attr]
        assert await every_line(store, finished, 0, limit=1000) == stored[finished]
        assert await every_line(store, finished, 1500, limit=700) == stored[finished][1500:]
        assert [entry.sequence for entry in await every_entry(store, finished, 999)] == list(range(1000, 3001))
        # The running job's supervisor goes on: its new lines are compressed, after the old ones.
        store.append_payload(running, payload(added))
        store.update(running, status=pb.JOB_STATUS_COMPLETED)
        await store.sync()
        assert running not in store.logs
        assert await every_line(store, running, 40, limit=5000) == stored[running][40:] + added
        assert await store.prune(max_age_s=1e12, max_bytes=disk_bytes(tmp_path, running)) == [finished]
        await store.close()

    asyncio.run(scenario())
    rows = stored_rows(tmp_path, running)
    assert [(first, last, compression) for first, last, _, compression in rows] == [(1, 50, STORED), (51, 1050, ZLIB)]
    assert rows[0][2] == len(payload(stored[running]))  # the old row as it was

    async def reopen() -> None:
        reopened = new_store(tmp_path)  # upgraded already: opens as a store of today's layout
        assert await every_line(reopened, running, 0, limit=5000) == stored[running] + added
        await reopened.close()

    asyncio.run(reopen())
