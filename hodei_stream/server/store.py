"""The job store: every job and every log line, in SQLite in the state folder.

Jobs (small, few) live in memory and are written through to SQLite.  Log lines are the hot
path: ``append_lines`` puts them in the job's in-memory buffer (so a reader sees them at
once) and hands them to a writer thread that commits them in batches (WAL), off the event
loop.  The buffer keeps every line not yet committed plus a window of recent ones, each
with its encoded gRPC message once a subscriber asked for it (encoded once, sent to all); older
history is read from SQLite in a worker thread, a page at a time, so the event loop is never
held by the disk.  All methods except the writer's are called on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from bisect import bisect_right
from concurrent.futures import Future
from dataclasses import astuple, dataclass, fields, replace
from functools import cache
from itertools import accumulate, chain
from operator import attrgetter
from pathlib import Path

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import LogLine
from hodei_stream.server.entries import encode_messages
from hodei_stream.server.fanout import Fanout
from hodei_stream.server.settings import ServerSettings

DATABASE_NAME = "jobs.sqlite3"
FINAL_STATUSES = frozenset(
    {pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED, pb.JOB_STATUS_TIMEOUT}
)
# A page of lines: at most this many, and no more encoded bytes than fit comfortably under a
# client's default 4 MiB message limit (always at least one line, up to 2 MiB long).
PAGE_LINES = 5000
PAGE_BYTES = 3 * 1024 * 1024
# What a line costs in a GetLogsResponse beyond its UTF-8 text, at most: the entry's tag and
# length, the job id, sequence, timestamp, stream flag and the text's own tag and length (85).
ENTRY_OVERHEAD_BYTES = 96
# Lines per INSERT statement: 5 values each stays under the 999 variables per statement
# that SQLite allowed by default before 3.32.
INSERT_ROWS = 199
# A LogLine as a row of the ``log_lines`` table.
LINE_ROW = attrgetter("job_id", "sequence", "captured_ns", "is_stderr", "text")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    definition BLOB NOT NULL,
    status INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    started_ns INTEGER NOT NULL,
    ended_ns INTEGER NOT NULL,
    exit_code TEXT NOT NULL,
    error_message TEXT NOT NULL,
    line_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log_lines (
    job_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    captured_ns INTEGER NOT NULL,
    is_stderr INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (job_id, sequence)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class JobRecord:
    """A job as the store keeps it; field order is the ``jobs`` table's column order."""

    job_id: str
    name: str
    definition: bytes  # the serialized JobDefinition, as queued
    status: int  # a hodei JobStatus value
    created_ns: int
    started_ns: int = 0
    ended_ns: int = 0
    exit_code: str = ""
    error_message: str = ""
    line_count: int = 0  # the last sequence the job wrote

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class Forget:
    """For the writer: delete these jobs and their lines (retention)."""

    job_ids: list[str]


def _insert_lines(database: sqlite3.Connection, lines: list[LogLine]) -> None:
    """Insert a job's lines with multi-row INSERTs: one statement per ``INSERT_ROWS`` lines,
    which SQLite runs in one step with the GIL released throughout.  (``executemany`` steps,
    and takes the GIL back, once per row: while the event loop thread is busy, that made
    the writer 2-3 times slower, 28-37 µs a line instead of 12-16.)"""
    for start in range(0, len(lines), INSERT_ROWS):
        chunk = lines[start : start + INSERT_ROWS]
        database.execute(_insert_statement(len(chunk)), list(chain.from_iterable(map(LINE_ROW, chunk))))


@cache
def _insert_statement(rows: int) -> str:
    return "INSERT OR IGNORE INTO log_lines VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * rows)


class JobLog:
    """A job's lines in memory: ``lines[i]`` has sequence ``first_sequence + i``; the lines
    before ``first_sequence`` are committed.  ``messages[i]`` is ``lines[i]`` encoded for
    SubscribeLogs, for a prefix of ``lines``: encoded when a subscriber first asks, once for
    all of them."""

    def __init__(self, first_sequence: int) -> None:
        self.first_sequence = first_sequence
        self.lines: list[LogLine] = []
        self.messages: list[bytes] = []
        self.committed_sequence = first_sequence - 1

    def encoded(self, start: int, end: int) -> list[bytes]:
        """The encoded messages of ``lines[start:end]``, encoding those not encoded yet."""
        if end > len(self.messages):
            self.messages += encode_messages(self.lines[len(self.messages) : end])
        return self.messages[start:end]

    def trim(self, keep: int) -> None:
        """Forget committed lines beyond the newest ``keep``; done in chunks, since a list
        shifts on every deletion from its front."""
        droppable = min(self.committed_sequence - self.first_sequence + 1, len(self.lines) - keep)
        if droppable > keep // 4:
            del self.lines[:droppable]
            del self.messages[:droppable]  # (still a prefix of the lines: maybe an empty one)
            self.first_sequence += droppable


@dataclass(frozen=True)
class EncodedPage:
    """Consecutive lines of a job as encoded gRPC messages, ready to be written to a stream."""

    last_sequence: int
    data: bytes


def _fitting(sizes: list[int]) -> int:
    """How many of the first items of these sizes fit in ``PAGE_BYTES`` (one at least: a
    bigger item goes alone)."""
    return max(bisect_right(list(accumulate(sizes)), PAGE_BYTES), min(1, len(sizes)))


def _page(lines: list[LogLine]) -> list[LogLine]:
    """The first of ``lines`` that fit in one page, sized as encoded (a '€' is 3 bytes)."""
    return lines[: _fitting([ENTRY_OVERHEAD_BYTES + _utf8_size(line.text) for line in lines])]


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())  # isascii: O(1) in CPython


def _encoded_page(messages: list[bytes], last_sequence: int) -> EncodedPage | None:
    """The first of ``messages``, whose last has ``last_sequence``, that fit in one page."""
    count = _fitting([len(message) for message in messages])
    if not count:
        return None
    return EncodedPage(last_sequence - len(messages) + count, b"".join(messages[:count]))


class JobStore:
    def __init__(self, home: Path, settings: ServerSettings, fanout: Fanout) -> None:
        self.path = home / DATABASE_NAME
        self.settings = settings
        self.fanout = fanout
        self.loop = asyncio.get_running_loop()
        self.jobs: dict[str, JobRecord] = {}
        self.logs: dict[str, JobLog] = {}
        self.write_error: str | None = None  # None while the store can write; else why not (one line)
        # What the writer thread commits next: jobs, lines, sync barriers; None stops it.
        self.pending: queue.SimpleQueue[JobRecord | list[LogLine] | Forget | Future[None] | None] = queue.SimpleQueue()
        self.readers = threading.local()
        self.commit_seen = asyncio.Event()  # set, and replaced, on every commit
        with self._connect() as database:
            database.executescript(SCHEMA)
            for row in database.execute("SELECT * FROM jobs"):
                record = JobRecord(*row)
                if not record.is_final:
                    # Still running under its supervisor, which resumes after the last line
                    # committed: count what is on disk, not what the record last said.
                    (stored,) = database.execute(
                        "SELECT coalesce(max(sequence), 0) FROM log_lines WHERE job_id = ?", (record.job_id,)
                    ).fetchone()
                    record = replace(record, line_count=stored)
                    self.logs[record.job_id] = JobLog(first_sequence=stored + 1)
                self.jobs[record.job_id] = record
        self.writer = threading.Thread(target=self._write_loop, name="hodei-store-writer", daemon=True)
        self.writer.start()

    def _connect(self) -> sqlite3.Connection:
        database = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        database.execute("PRAGMA journal_mode=WAL")
        database.execute("PRAGMA synchronous=NORMAL")  # durable across a crash of the process
        return database

    async def close(self) -> None:
        """Commit everything still pending and stop the writer."""
        self.pending.put(None)
        await asyncio.to_thread(self.writer.join)

    async def sync(self) -> None:
        """Return once everything stored so far is committed to disk."""
        barrier: Future[None] = Future()
        self.pending.put(barrier)
        await asyncio.wrap_future(barrier)

    # ---- jobs ------------------------------------------------------------------------

    def create_job(self, record: JobRecord) -> bool:
        """Store a new job; False when a job with its id already exists."""
        if record.job_id in self.jobs:
            return False
        self.jobs[record.job_id] = record
        self.logs[record.job_id] = JobLog(first_sequence=1)
        self.pending.put(record)
        return True

    def get(self, job_id: str) -> JobRecord | None:
        return self.jobs.get(job_id)

    def unfinished(self) -> list[JobRecord]:
        return [record for record in self.jobs.values() if not record.is_final]

    def is_final(self, job_id: str) -> bool:
        return self.jobs[job_id].is_final

    def update(self, job_id: str, **changes: object) -> JobRecord:
        record = self.jobs[job_id] = replace(self.jobs[job_id], **changes)  # type: ignore[arg-type]
        self.pending.put(record)
        self.fanout.wake(job_id)
        return record

    def list_jobs(self, limit: int, offset: int, status: int | None, search: str) -> tuple[list[JobRecord], int]:
        """A page of jobs, newest first, and how many match in all."""
        needle = search.casefold()
        matching = [
            record for record in self.jobs.values()
            if (status is None or record.status == status)
            and (not needle or needle in record.name.casefold() or needle in record.job_id)
        ]
        matching.sort(key=lambda record: record.created_ns, reverse=True)
        return matching[offset : offset + limit], len(matching)

    async def prune(self, max_age_s: float, max_bytes: int) -> list[str]:
        """Forget finished jobs (and their logs) that ended more than ``max_age_s`` ago, then
        the oldest finished ones until the stored log text fits in ``max_bytes``.  A job that
        has not finished is never touched.  Returns the ids forgotten."""
        sizes = await asyncio.to_thread(self._log_sizes)
        too_old_ns = time.time_ns() - int(max_age_s * 1e9)
        total = sum(sizes.values())
        forgotten: list[str] = []
        for record in sorted((r for r in self.jobs.values() if r.is_final), key=lambda r: r.ended_ns):
            if record.ended_ns >= too_old_ns and total <= max_bytes:
                break  # sorted by end: every later job is younger, and the size fits
            forgotten.append(record.job_id)
            total -= sizes.get(record.job_id, 0)
        for job_id in forgotten:
            del self.jobs[job_id]
            self.logs.pop(job_id, None)
        if forgotten:
            self.pending.put(Forget(forgotten))
            await self.sync()
        return forgotten

    def _log_sizes(self) -> dict[str, int]:
        rows = self._reader().execute("SELECT job_id, sum(length(CAST(text AS BLOB))) FROM log_lines GROUP BY job_id")
        return dict(rows.fetchall())

    # ---- log lines -------------------------------------------------------------------

    def append_lines(self, job_id: str, lines: list[LogLine]) -> None:
        """Lines from the job's supervisor, numbered by it, in order; visible to readers at once."""
        log = self.logs[job_id]
        log.lines.extend(lines)
        self.jobs[job_id] = replace(self.jobs[job_id], line_count=lines[-1].sequence)
        self.pending.put(lines)
        self.fanout.wake(job_id)

    async def read(self, job_id: str, after_sequence: int, limit: int = PAGE_LINES) -> list[LogLine]:
        """Up to ``limit`` lines of ``job_id`` with sequence > ``after_sequence``, oldest first
        (fewer when a page's byte bound is reached)."""
        log = self.logs.get(job_id)
        if log is not None and after_sequence + 1 >= log.first_sequence:
            start = after_sequence + 1 - log.first_sequence
            return _page(log.lines[start : start + limit])
        # Older than the buffer (or a job from before this server started): all committed.
        return _page(await asyncio.to_thread(self._read_committed, job_id, after_sequence, limit))

    async def read_encoded(self, job_id: str, after_sequence: int) -> EncodedPage | None:
        """What ``read`` gives, as the encoded gRPC messages SubscribeLogs sends; None when there is
        nothing after ``after_sequence`` yet."""
        log = self.logs.get(job_id)
        if log is not None and after_sequence + 1 >= log.first_sequence:
            start = after_sequence + 1 - log.first_sequence
            end = min(start + PAGE_LINES, len(log.lines))
            return _encoded_page(log.encoded(start, end), log.first_sequence + end - 1)
        # Older than the buffer: read and encoded in a worker thread, for this reader alone.
        lines = await asyncio.to_thread(self._read_committed, job_id, after_sequence, PAGE_LINES)
        return _encoded_page(await asyncio.to_thread(encode_messages, lines), lines[-1].sequence) if lines else None

    async def wait_for_backlog(self, job_id: str) -> None:
        """Return once ``job_id`` has at most ``store_max_backlog_lines`` lines waiting for
        the writer (at once, usually)."""
        while (log := self.logs.get(job_id)) is not None and (
                self.jobs[job_id].line_count - log.committed_sequence > self.settings.store_max_backlog_lines):
            await self.commit_seen.wait()

    def _reader(self) -> sqlite3.Connection:
        """This (worker) thread's own connection for reads."""
        database = getattr(self.readers, "database", None)
        if database is None:
            database = self.readers.database = self._connect()
        return database

    def _read_committed(self, job_id: str, after_sequence: int, limit: int) -> list[LogLine]:
        rows = self._reader().execute(
            "SELECT sequence, captured_ns, is_stderr, text FROM log_lines"
            " WHERE job_id = ? AND sequence > ? ORDER BY sequence LIMIT ?",
            (job_id, after_sequence, limit),
        )
        return [LogLine(job_id, sequence, ns, bool(is_stderr), text) for sequence, ns, is_stderr, text in rows]

    def _committed(self, committed: dict[str, int]) -> None:
        """On the loop: the writer committed these jobs' lines up to these sequences."""
        self.commit_seen.set()
        self.commit_seen = asyncio.Event()
        for job_id, sequence in committed.items():
            log = self.logs.get(job_id)
            if log is None:
                continue
            log.committed_sequence = sequence
            record = self.jobs[job_id]
            if record.is_final and sequence >= record.line_count:
                del self.logs[job_id]  # all on disk and nothing more will come
            else:
                log.trim(self.settings.store_recent_lines)

    # ---- the writer thread -----------------------------------------------------------

    def _write_loop(self) -> None:
        database = self._connect()
        columns = len(fields(JobRecord))
        upsert_job = f"INSERT OR REPLACE INTO jobs VALUES ({', '.join('?' * columns)})"
        stopping = False
        while not stopping:
            batch = [self.pending.get()]
            gather_until = time.monotonic() + self.settings.store_commit_interval_s
            while batch[-1] is not None and (left := gather_until - time.monotonic()) > 0:
                try:
                    batch.append(self.pending.get(timeout=left))
                except queue.Empty:
                    break
            committed: dict[str, int] = {}
            barriers: list[Future[None]] = []
            lines_by_job: dict[str, list[LogLine]] = {}  # inserted together, after the loop
            database.execute("BEGIN")
            for item in batch:
                if item is None:
                    stopping = True
                elif isinstance(item, Future):
                    barriers.append(item)
                elif isinstance(item, Forget):
                    for job_id in item.job_ids:
                        lines_by_job.pop(job_id, None)
                    database.executemany("DELETE FROM log_lines WHERE job_id = ?", [(i,) for i in item.job_ids])
                    database.executemany("DELETE FROM jobs WHERE job_id = ?", [(i,) for i in item.job_ids])
                elif isinstance(item, JobRecord):
                    database.execute(upsert_job, astuple(item))
                    # Reported too, so that a final job's buffer is let go once all is on disk.
                    committed.setdefault(item.job_id, item.line_count)
                else:
                    lines_by_job.setdefault(item[0].job_id, []).extend(item)
            for job_id, lines in lines_by_job.items():
                _insert_lines(database, lines)
                committed[job_id] = lines[-1].sequence
            for job_id, sequence in committed.items():
                database.execute("UPDATE jobs SET line_count = ? WHERE job_id = ?", (sequence, job_id))
            database.execute("COMMIT")
            for barrier in barriers:
                barrier.set_result(None)
            if not stopping:
                self.loop.call_soon_threadsafe(self._committed, committed)
        database.close()
