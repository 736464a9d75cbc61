"""The job store: every job and every log line, in SQLite in the state folder.

Jobs' records (status, times, a few short fields) live in memory and are written through to
SQLite; a job's definition (its command, arguments, environment: any size) is kept only until
it is committed and then read back from SQLite when asked for.  Log lines are the hot
path, and they are never taken apart on it: a LINES payload from a job's supervisor (its
lines in the supervisor protocol's layout) becomes one ``LineBlock`` (``append_payload`` checks its
sequences by the headers alone), which goes into the job's in-memory buffer (``JobLog``: a
reader sees it at once) and to the writer thread (``Writer``), which commits blocks in batches
(WAL), off the event loop, a job's consecutive blocks joined into one row of ``log_pages``,
compressed (zlib) there and decompressed only for a read of those lines from disk.
The buffer keeps every block not yet committed plus a window of recent ones, each with its
lines encoded as gRPC messages once a subscriber asked for them (encoded once, sent to all);
older history is read from SQLite in the reading thread (``Reader``), a page at a time, so
the event loop is never held by the disk.  ``LogLine`` objects are made only for GetLogs
(``read``).  ``JobStore``'s methods are called on the event loop's thread.

A state folder from before ``log_pages`` (a ``log_lines`` table, one row per line) is converted once,
in one transaction, when the store opens it; one from before compression has its rows read as
they are, beside the compressed ones written since (``schema.upgrade``).

A job is reported final (``get``, ``list_jobs``, the end of its SubscribeLogs streams) only
once its final record, and so every line before it, is committed.  A write that fails (a full
disk, an I/O error) is retried with back-off until it succeeds, without a restart; meanwhile
``write_error`` names the cause, every job that needs a write fails with that message (its
supervisor keeps the spooled lines until the retried batch is committed), and new jobs are
refused (``StoreUnavailable``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import LogLine
from hodei_stream.server.entries import span
from hodei_stream.server.fanout import Fanout
from hodei_stream.server.settings import ServerSettings
from hodei_stream.server.store.backpressure import is_backlogged
from hodei_stream.server.store.job_log import JobLog
from hodei_stream.server.store.paging import PAGE_LINES, encoded_page, first_page, lines_after
from hodei_stream.server.store.reader import Reader
from hodei_stream.server.store.retention import expired
from hodei_stream.server.store.schema import (
    DATABASE_NAME,
    RECORD_COLUMNS,
    SCHEMA,
    open_database,
    upgrade,
)
from hodei_stream.server.store.types import Commit, EncodedPage, Forget, JobRecord, LineBlock, NewJob
from hodei_stream.server.store.writer import Writer

logger = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The store cannot write (a full disk, an I/O error): no new job until it can.  Its
    message is one line, for users (the servicers answer UNAVAILABLE with it)."""

    def __init__(self, write_error: str) -> None:
        super().__init__(f"{write_error}; no new job is accepted until it can write again")


class JobStore:
    def __init__(self, home: Path, settings: ServerSettings, fanout: Fanout) -> None:
        self.path = home / DATABASE_NAME
        self.settings = settings
        self.fanout = fanout
        # Every job as clients see it: a job's final record appears here once committed.
        self.jobs: dict[str, JobRecord] = {}
        # Final records waiting for their commit (in ``jobs`` the job is still unfinished).
        self.ending: dict[str, JobRecord] = {}
        # Definitions of new jobs until the writer committed them; read from SQLite after.
        self.definitions: dict[str, bytes] = {}
        self.logs: dict[str, JobLog] = {}
        # None while writes succeed; else why the last one failed (one line, for users).
        self.write_error: str | None = None
        # Told about every job the store failed (the worker stops it): (job id, message).
        self.on_job_failed: Callable[[str, str], object] = lambda job_id, message: None
        self.pending_bytes = 0  # lines' bytes not committed yet, of all jobs
        self.reader = Reader(self.path)
        self.commit_seen = asyncio.Event()  # set, and replaced, on every commit
        with open_database(self.path) as database:
            database.executescript(SCHEMA)
            upgrade(database)
            for row in database.execute(f"SELECT {', '.join(RECORD_COLUMNS)} FROM jobs"):
                record = JobRecord(*row)
                if not record.is_final:
                    # Still running under its supervisor, which resumes after the last line
                    # committed: count what is on disk, not what the record last said.
                    (stored,) = database.execute(
                        "SELECT coalesce(max(last_sequence), 0) FROM log_pages WHERE job_id = ?", (record.job_id,)
                    ).fetchone()
                    record = replace(record, line_count=stored)
                    self.logs[record.job_id] = JobLog(first_sequence=stored + 1)
                self.jobs[record.job_id] = record
        self.writer = Writer(self.path, settings.store_commit_interval_s, self._committed, self._write_failed)

    async def close(self) -> None:
        """Commit everything still pending and stop the writer (which gives up a write that
        keeps failing: the supervisors still hold those jobs' spools)."""
        await self.writer.close()
        await self.reader.close()

    async def sync(self) -> None:
        """Return once everything stored so far is committed to disk."""
        barrier: Future[None] = Future()
        self.writer.put(barrier)
        await asyncio.wrap_future(barrier)

    async def committed(self, job_id: str) -> None:
        """Return once the new job ``job_id`` is committed; ``StoreUnavailable`` if the store
        fails its write (the job is then FAILED with the store's message)."""
        commit = asyncio.ensure_future(self.sync())
        while True:
            changed = asyncio.ensure_future(self.fanout.waiter(job_id).wait())
            await asyncio.wait((commit, changed), return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            if commit.done():
                return
            if self.write_error is not None and self.jobs[job_id].is_final:
                raise StoreUnavailable(self.write_error)  # (the sync completes once a retry does)

    # ---- jobs ------------------------------------------------------------------------

    def create_job(self, record: JobRecord, definition: bytes) -> bool:
        """Store a new job and its serialized ``JobDefinition``; False when a job with its id
        exists already.  Raises ``StoreUnavailable`` while the store cannot write."""
        if self.write_error is not None:
            raise StoreUnavailable(self.write_error)
        if record.job_id in self.jobs:
            return False
        self.jobs[record.job_id] = record
        self.definitions[record.job_id] = definition
        self.logs[record.job_id] = JobLog(first_sequence=1)
        self.writer.put(NewJob(record, definition))
        return True

    def get(self, job_id: str) -> JobRecord | None:
        return self.jobs.get(job_id)

    async def definition(self, job_id: str) -> bytes:
        """The serialized ``JobDefinition`` of a stored job."""
        if (definition := self.definitions.get(job_id)) is not None:
            return definition
        return await self.reader.definition(job_id)

    def unfinished(self) -> list[JobRecord]:
        return [record for record in self.jobs.values() if not record.is_final and record.job_id not in self.ending]

    def is_final(self, job_id: str) -> bool:
        """The job's final state is committed: what clients are told."""
        return self.jobs[job_id].is_final

    def has_ended(self, job_id: str) -> bool:
        """The job's final state is known (committed or not): nothing more is taken for it."""
        return job_id in self.ending or self.jobs[job_id].is_final

    def update(self, job_id: str, **changes: object) -> JobRecord:
        """Change a job's record; a final one shows once it is committed (or failed at once
        while the store cannot write)."""
        record = replace(self.ending.get(job_id) or self.jobs[job_id], **changes)  # type: ignore[arg-type]
        if self.write_error is not None:
            self._fail(job_id, self.write_error)
        elif record.is_final:
            self.ending[job_id] = record
            self.writer.put(record)
        else:
            self.jobs[job_id] = record
            self.writer.put(record)
            self.fanout.wake(job_id)
        return record

    def _fail(self, job_id: str, message: str) -> None:
        """The store could not write for this job: it is FAILED with ``message``, shown at once
        (the honest answer while nothing can be committed), written once the store can."""
        shown = self.jobs.get(job_id)
        if shown is None or shown.is_final:
            return  # its final state is committed, or it has failed already
        current = self.ending.pop(job_id, None) or shown
        failed = self.jobs[job_id] = replace(
            current, status=pb.JOB_STATUS_FAILED, error_message=message, ended_ns=current.ended_ns or time.time_ns()
        )
        self.writer.put(failed)
        self.fanout.wake(job_id)
        self.on_job_failed(job_id, message)

    def list_jobs(self, limit: int, offset: int, status: int | None, search: str) -> tuple[list[JobRecord], int]:
        """A page of jobs, newest first, and how many match in all."""
        needle = search.casefold()
        matching = [
            record
            for record in self.jobs.values()
            if (status is None or record.status == status)
            and (not needle or needle in record.name.casefold() or needle in record.job_id)
        ]
        matching.sort(key=lambda record: record.created_ns, reverse=True)
        return matching[offset : offset + limit], len(matching)

    async def prune(self, max_age_s: float, max_bytes: int) -> list[str]:
        """Forget finished jobs (and their logs) that ended more than ``max_age_s`` ago, then
        the oldest finished ones until the committed logs' bytes on disk (compressed) fit in
        ``max_bytes``.  A job that
        has not finished is never touched.  Returns the ids forgotten."""
        forgotten = expired(self.jobs.values(), await self.reader.log_sizes(), max_age_s, max_bytes)
        for job_id in forgotten:
            del self.jobs[job_id]
            self.logs.pop(job_id, None)
        if forgotten:
            self.writer.put(Forget(forgotten))
            await self.sync()
        return forgotten

    # ---- log lines -------------------------------------------------------------------

    def append_payload(self, job_id: str, payload: bytes) -> None:
        """A LINES payload from the job's supervisor: its lines after those stored already
        become visible to readers at once.  Raises ValueError when they do not follow the
        last line stored (a gap would break "every line once, in order": the supervisor is
        made to resume) or the payload is malformed."""
        stored = self.jobs[job_id].line_count
        start, first, last = span(payload, stored)
        if not first:
            return  # all of it stored already (sent again after a reconnect)
        if first != stored + 1:
            raise ValueError(f"job {job_id}: line {first} after line {stored}")
        block = LineBlock(job_id, first, last, payload[start:] if start else payload)
        self.logs[job_id].append(block)
        self.pending_bytes += len(block.payload)
        self.jobs[job_id] = self.jobs[job_id].with_line_count(last)
        self.fanout.wake(job_id)  # (before the writer is told: see ``Writer.put``)
        self.writer.put(block)
        if self.write_error is not None:
            self._fail(job_id, self.write_error)

    async def read(self, job_id: str, after_sequence: int, limit: int = PAGE_LINES) -> list[LogLine]:
        """Up to ``limit`` lines of ``job_id`` with sequence > ``after_sequence``, oldest first
        (fewer when a page's byte bound is reached)."""
        log = self.logs.get(job_id)
        if log is not None and after_sequence + 1 >= log.first_sequence:
            return first_page(lines_after(log.blocks_from(after_sequence + 1), after_sequence, limit))
        # Older than the buffer (or a job from before this server started): all committed.
        blocks = await self.reader.blocks(job_id, after_sequence, limit)
        return first_page(lines_after(blocks, after_sequence, limit))

    async def read_encoded(self, job_id: str, after_sequence: int) -> EncodedPage | None:
        """What ``read`` gives, as the encoded gRPC messages SubscribeLogs sends; None when there is
        nothing after ``after_sequence`` yet."""
        if self.in_memory(job_id, after_sequence):
            return self.encoded_in_memory(job_id, after_sequence)
        # Older than the buffer: read and encoded in the reading thread, for this reader alone.
        return await self.reader.encoded_page(job_id, after_sequence)

    def in_memory(self, job_id: str, after_sequence: int) -> bool:
        """Whether the lines after ``after_sequence`` are in the in-memory buffer (all of them
        are, from its first on: what a caught-up reader asks for)."""
        log = self.logs.get(job_id)
        return log is not None and after_sequence + 1 >= log.first_sequence

    def encoded_in_memory(self, job_id: str, after_sequence: int) -> EncodedPage | None:
        """``read_encoded`` from the in-memory buffer, without waiting (``in_memory`` must hold)."""
        log = self.logs[job_id]
        return encoded_page(log.blocks_from(after_sequence + 1), after_sequence, log.messages)

    async def wait_for_backlog(self, job_id: str) -> None:
        """Return once ``job_id`` is not ``backlogged`` (at once, usually)."""
        while self.backlogged(job_id):
            await self.commit_seen.wait()

    def backlogged(self, job_id: str) -> bool:
        """``job_id``'s lines wait for the writer beyond the bounds (``backpressure``)."""
        log = self.logs.get(job_id)
        return log is not None and is_backlogged(self.jobs[job_id], log, self.pending_bytes, self.settings)

    def _writer_reported(self) -> None:
        """Wake whoever waits on the writer (``wait_for_backlog``) to look again."""
        self.commit_seen.set()
        self.commit_seen = asyncio.Event()

    def _committed(self, commit: Commit) -> None:
        """On the loop: the writer committed this batch."""
        if self.write_error is not None:
            logger.info("the store writes again")
            self.write_error = None
        self._writer_reported()
        for job_id in commit.definitions:
            self.definitions.pop(job_id, None)
        for record in commit.records:
            if self.ending.get(record.job_id) is record:
                # The job's end and every line before it are on disk: now it may be reported.
                self.jobs[record.job_id] = self.ending.pop(record.job_id)
                self.fanout.wake(record.job_id)
        for job_id, size in commit.payload_bytes.items():
            self.pending_bytes -= size
            if log := self.logs.get(job_id):
                log.pending_bytes -= size
        for job_id, sequence in commit.sequences.items():
            log = self.logs.get(job_id)
            if log is None:
                continue
            log.committed_sequence = sequence
            record = self.jobs[job_id]
            if record.is_final and sequence >= record.line_count:
                del self.logs[job_id]  # all on disk and nothing more will come
            else:
                log.trim(self.settings.store_recent_lines, self.settings.store_recent_bytes)

    def _write_failed(self, message: str, job_ids: set[str]) -> None:
        """On the loop: a batch could not be committed (the writer tries it again)."""
        if self.write_error is None:
            logger.error("%s; jobs that need a write now fail and new jobs are refused until a retry succeeds", message)
        self.write_error = message
        for job_id in job_ids:
            self._fail(job_id, message)
        self._writer_reported()  # a failed job's supervisor is read on: its end is awaited
