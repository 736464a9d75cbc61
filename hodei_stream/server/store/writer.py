"""The writer thread: it commits what the store hands it (new jobs, records, blocks of lines,
retention, sync barriers) in batches, one transaction each, off the event loop, and reports
each commit, or each failed attempt, back to the loop.  A failed batch is tried again with
back-off, on a new connection, until it is committed or the store closes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import astuple
from functools import cache
from itertools import chain
from pathlib import Path

from hodei_stream.server.store.schema import INSERT_JOB, UPDATE_JOB, PageRow, open_database, packed
from hodei_stream.server.store.types import Commit, Forget, JobRecord, LineBlock, NewJob, Pending

# The writer joins a job's consecutive blocks of one batch into rows of about this size (a
# single bigger payload is a row of its own), each compressed whole: few rows, and a read of
# a few lines from disk does not fetch (and decompress) much more than it needs.
ROW_BYTES = 64 * 1024

# A failed write is tried again after this long, then twice as long each time up to the maximum.
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0

# Rows per INSERT statement: 5 values each stays under the 999 variables per statement that
# SQLite allowed by default before 3.32; and about this many bytes of payloads (SQLite binds a
# copy of each: a statement of 199 big rows would double the batch in memory).
INSERT_ROWS = 199
INSERT_BYTES = 1024 * 1024


def _rows(blocks: list[LineBlock]) -> Iterator[PageRow]:
    """A job's consecutive blocks as ``log_pages`` rows of about ``ROW_BYTES`` each."""
    group: list[LineBlock] = []
    size = 0
    for block in blocks:
        if group and size + len(block.payload) > ROW_BYTES:
            yield _row(group)
            group, size = [], 0
        group.append(block)
        size += len(block.payload)
    if group:
        yield _row(group)


def _row(blocks: list[LineBlock]) -> PageRow:
    payload = blocks[0].payload if len(blocks) == 1 else b"".join(block.payload for block in blocks)
    # (zlib releases the GIL while it compresses: the event loop goes on meanwhile.)
    return blocks[0].job_id, blocks[0].first_sequence, blocks[-1].last_sequence, *packed(payload)


def _insert_rows(database: sqlite3.Connection, rows: list[PageRow]) -> None:
    """Insert ``log_pages`` rows with multi-row INSERTs (up to ``INSERT_ROWS`` rows and about
    ``INSERT_BYTES``), each of which SQLite runs in one step with the GIL released throughout.
    (``executemany`` steps, and takes the GIL back, once per row: while the event loop thread
    is busy, each of those waits up to the interpreter's switch interval, and the writer falls
    behind the jobs, which the total bound then holds back.)"""
    chunk: list[PageRow] = []
    size = 0
    for row in rows:
        chunk.append(row)
        size += len(row[3])
        if len(chunk) == INSERT_ROWS or size >= INSERT_BYTES:
            database.execute(_insert_statement(len(chunk)), list(chain.from_iterable(chunk)))
            chunk, size = [], 0
    if chunk:
        database.execute(_insert_statement(len(chunk)), list(chain.from_iterable(chunk)))


@cache
def _insert_statement(rows: int) -> str:
    return "INSERT OR IGNORE INTO log_pages VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * rows)


def _is_urgent(item: object) -> bool:
    """Somebody waits for this item's commit (a sync, a job's end): commit without gathering
    more.  (A new job's QueueJob waits with a sync, which commits the job with it.)"""
    return item is None or isinstance(item, Future) or (isinstance(item, JobRecord) and item.is_final)


def _job_ids(batch: list[Pending]) -> set[str]:
    """The jobs whose lines or records are in ``batch``."""
    ids: set[str] = set()
    for item in batch:
        if isinstance(item, JobRecord | LineBlock):
            ids.add(item.job_id)
        elif isinstance(item, NewJob):
            ids.add(item.record.job_id)
    return ids


class Writer:
    """The writer thread, and the queue the event loop hands it items through.  ``committed``
    and ``failed`` are called on the loop: after each commit, with what it stored, and after
    each failed attempt, with the message for users and the jobs whose items it held."""

    def __init__(
        self,
        path: Path,
        commit_interval_s: float,
        committed: Callable[[Commit], object],
        failed: Callable[[str, set[str]], object],
    ) -> None:
        self.path = path
        self.commit_interval_s = commit_interval_s
        self.committed = committed
        self.failed = failed
        self.loop = asyncio.get_running_loop()
        # What the writer thread commits next: jobs, lines, sync barriers; None stops it.  The
        # writer is woken by the first item of a batch and by an urgent one, not by every item:
        # a wake-up per LINES message costs the event loop the GIL on the hot path.
        self.pending: deque[Pending] = deque()
        self.has_pending = threading.Event()
        self.urgent = threading.Event()
        self.told = False  # a call to ``_tell`` is scheduled
        self.closing = threading.Event()  # a writer retrying a failed write gives up
        self.thread = threading.Thread(target=self._write_loop, name="hodei-store-writer", daemon=True)
        self.thread.start()

    def put(self, item: Pending) -> None:
        """Hand ``item`` to the writer.  The writer is told of a batch's first item after the
        callbacks already scheduled (a follower woken by these lines sends them first): woken
        at once, the writer thread takes the GIL at the loop's next ``epoll_wait``, before the
        follower, and delays about half the lines of a job that writes slowly."""
        self.pending.append(item)
        if _is_urgent(item):
            self.has_pending.set()
            self.urgent.set()
        elif not self.has_pending.is_set() and not self.told:
            self.told = True
            self.loop.call_soon(self._tell)

    def _tell(self) -> None:
        self.told = False
        self.has_pending.set()

    async def close(self) -> None:
        """Commit everything still pending and stop the thread (which gives up a write that
        keeps failing)."""
        self.closing.set()
        self.put(None)
        await asyncio.to_thread(self.thread.join)

    def _write_loop(self) -> None:
        database: sqlite3.Connection | None = None
        stopping = False
        while not stopping:
            self.has_pending.wait()
            self.urgent.wait(self.commit_interval_s)  # gather, unless one waits
            # Cleared before taking: an item put from now on sets them again.
            self.has_pending.clear()
            self.urgent.clear()
            batch: list[Pending] = []
            while self.pending:
                batch.append(self.pending.popleft())
            if not batch:
                continue
            stopping = None in batch
            retry_s = RETRY_FIRST_S
            while True:
                try:
                    database = database or open_database(self.path)
                    commit = _commit(database, batch)
                    break
                except sqlite3.Error as error:
                    # A full disk, an I/O error: the same batch again later, on a new
                    # connection (the old one may be left in any state).
                    database.close() if database else None
                    database = None
                    cause = str(error).splitlines()[0] if str(error) else type(error).__name__
                    self.loop.call_soon_threadsafe(
                        self.failed, f"the store could not write to {self.path}: {cause}", _job_ids(batch)
                    )
                    if self.closing.wait(retry_s):
                        return  # the server stops: what is not committed stays in the spools
                    retry_s = min(2 * retry_s, RETRY_MAX_S)
            if not stopping:
                self.loop.call_soon_threadsafe(self.committed, commit)
            for barrier in commit.barriers:  # (after: a sync returns to a loop that knows the commit)
                barrier.set_result(None)
        if database:
            database.close()


def _commit(database: sqlite3.Connection, batch: list[Pending]) -> Commit:
    """Write ``batch`` in one transaction; what it stored."""
    commit = Commit()
    blocks_by_job: dict[str, list[LineBlock]] = {}  # inserted together, after the loop
    database.execute("BEGIN")
    try:
        for item in batch:
            if isinstance(item, Future):
                commit.barriers.append(item)
            elif isinstance(item, Forget):
                for job_id in item.job_ids:
                    blocks_by_job.pop(job_id, None)
                database.executemany("DELETE FROM log_pages WHERE job_id = ?", [(i,) for i in item.job_ids])
                database.executemany("DELETE FROM jobs WHERE job_id = ?", [(i,) for i in item.job_ids])
            elif isinstance(item, NewJob):
                database.execute(INSERT_JOB, (*astuple(item.record), item.definition))
                commit.definitions.append(item.record.job_id)
            elif isinstance(item, JobRecord):
                database.execute(UPDATE_JOB, (*astuple(item)[1:], item.job_id))
                commit.records.append(item)
                # Reported too, so that a final job's buffer is let go once all is on disk.
                commit.sequences.setdefault(item.job_id, item.line_count)
            elif item is not None:
                blocks_by_job.setdefault(item.job_id, []).append(item)
        rows: list[PageRow] = []
        for job_id, blocks in blocks_by_job.items():
            rows += _rows(blocks)
            commit.sequences[job_id] = blocks[-1].last_sequence
            commit.payload_bytes[job_id] = sum(len(block.payload) for block in blocks)
        _insert_rows(database, rows)
        # (A job's line_count column is not kept up with its lines: what its record said
        # last.  The lines of a job not final are counted when the store opens.)
        database.execute("COMMIT")
    except BaseException:
        if database.in_transaction:
            database.execute("ROLLBACK")
        raise
    return commit
