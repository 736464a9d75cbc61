"""The store's SQLite schema, its statements, how a row's payload is compressed, and the
upgrades of older state folders, which users can still have: a ``log_lines`` table (one row
per line) is converted once; ``log_pages`` rows from before compression are read as they are."""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import fields
from itertools import groupby, islice
from pathlib import Path

from hodei_stream.records import LogLine
from hodei_stream.server.store.types import JobRecord
from hodei_stream.server.supervisor_protocol import batch_records, encode_line_records

DATABASE_NAME = "jobs.sqlite3"

# Converting an old state folder's ``log_lines`` table: rows read (and held) at a time.
MIGRATION_CHUNK_LINES = 10_000

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
-- A job's lines first_sequence..last_sequence (consecutive), in the supervisor protocol's
-- LINES layout (LINE_HEADER + UTF-8 text per line), compressed as ``compression`` says.
CREATE TABLE IF NOT EXISTS log_pages (
    job_id TEXT NOT NULL,
    first_sequence INTEGER NOT NULL,
    last_sequence INTEGER NOT NULL,
    payload BLOB NOT NULL,
    compression INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, last_sequence)
);
"""

INSERT_PAGE = "INSERT OR IGNORE INTO log_pages VALUES (?, ?, ?, ?, ?)"
# A ``log_pages`` row: job id, first and last sequence, payload as stored, its compression.
PageRow = tuple[str, int, int, bytes, int]

# A row's ``compression``: its payload as the supervisor sent it, or compressed with zlib.
STORED = 0
ZLIB = 1
# Measured on rows of 64 KiB of ``line number N`` lines (their headers included): level 1
# keeps 0.40 of the text, levels 2 to 6 about 0.51, and level 1 compresses 1.5 to 6 times
# faster (155 MB/s here: a few per cent of a core at the ingest goal's rate).
ZLIB_LEVEL = 1


def packed(payload: bytes) -> tuple[bytes, int]:
    """A row's payload as it goes to disk, and its ``compression``: zlib, or the payload as it
    is when zlib's is not smaller (a line or two: zlib's header and checksum outweigh it)."""
    compressed = zlib.compress(payload, ZLIB_LEVEL)
    return (compressed, ZLIB) if len(compressed) < len(payload) else (payload, STORED)


def unpacked(data: bytes, compression: int) -> bytes:
    """A row's payload as the supervisor sent it."""
    return zlib.decompress(data) if compression == ZLIB else data


RECORD_COLUMNS = [field.name for field in fields(JobRecord)]


def _pages_of_rows(rows: Iterable[tuple[str, int, int, int, str]]) -> Iterator[PageRow]:
    """``log_lines`` rows (ordered by job and sequence) as ``log_pages`` rows: runs of
    consecutive sequences of one job (a row never spans a gap), read
    ``MIGRATION_CHUNK_LINES`` rows at a time (memory stays bounded whatever the table holds),
    as payloads of up to the supervisor protocol's ``BATCH_BYTES``."""
    runs = groupby(enumerate(rows), key=lambda numbered: (numbered[1][0], numbered[1][1] - numbered[0]))
    for (job_id, _), run in runs:
        while chunk := [row for _, row in islice(run, MIGRATION_CHUNK_LINES)]:
            records = [
                encode_line_records([LogLine(job_id, sequence, ns, bool(is_stderr), text)])
                for _, sequence, ns, is_stderr, text in chunk
            ]
            for payload, first, last in batch_records(records, chunk[0][1]):
                yield job_id, first, last, *packed(payload)


def upgrade(database: sqlite3.Connection) -> None:
    """Bring the tables of an older state folder to ``SCHEMA`` (which created what was missing):
    ``log_pages`` rows from before compression stay as they are (``compression`` 0); a
    ``log_lines`` table is converted."""
    columns = {row[1] for row in database.execute("PRAGMA table_info(log_pages)")}
    if "compression" not in columns:
        database.execute("ALTER TABLE log_pages ADD COLUMN compression INTEGER NOT NULL DEFAULT 0")
    convert_log_lines(database)


def convert_log_lines(database: sqlite3.Connection) -> None:
    """Turn the ``log_lines`` table of a state folder from before ``log_pages`` (a row per line) into
    ``log_pages`` rows, in one transaction: all of it, or (interrupted) none of it."""
    if not database.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'log_lines'").fetchone():
        return
    database.execute("BEGIN IMMEDIATE")
    try:
        rows = database.execute(
            "SELECT job_id, sequence, captured_ns, is_stderr, text FROM log_lines ORDER BY job_id, sequence"
        )
        database.executemany(INSERT_PAGE, _pages_of_rows(rows))
        database.execute("DROP TABLE log_lines")
        database.execute("COMMIT")
    except BaseException:
        if database.in_transaction:
            database.execute("ROLLBACK")
        raise


INSERT_JOB = (
    f"INSERT OR REPLACE INTO jobs ({', '.join(RECORD_COLUMNS)}, definition)"
    f" VALUES ({', '.join('?' * (len(RECORD_COLUMNS) + 1))})"
)

UPDATE_JOB = f"UPDATE jobs SET {', '.join(f'{column} = ?' for column in RECORD_COLUMNS[1:])} WHERE job_id = ?"


def open_database(path: Path) -> sqlite3.Connection:
    """A connection to the store's database, in WAL mode, usable from any thread."""
    database = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=NORMAL")  # durable across a crash of the process
    return database
