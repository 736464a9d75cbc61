"""The reading thread: reads from SQLite (history for readers behind the in-memory window,
definitions, retention's sizes) off the event loop, one at a time, on a connection of its own."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from hodei_stream.server.entries import encode_payload
from hodei_stream.server.store.paging import PAGE_BYTES, PAGE_LINES, encoded_page
from hodei_stream.server.store.schema import open_database, unpacked
from hodei_stream.server.store.types import EncodedPage, LineBlock

Result = TypeVar("Result")


class Reader:
    """Reads run in one thread of their own, with its own connection: reading and encoding a
    page holds the GIL, and a thread per lagging reader would take it from the event loop,
    which would then serve the live followers and every other call slower."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loop = asyncio.get_running_loop()
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hodei-store-reader")
        self.database: sqlite3.Connection | None = None

    async def definition(self, job_id: str) -> bytes:
        """The serialized ``JobDefinition`` of a committed job (empty if there is none)."""
        return await self._run(self._read_definition, job_id)

    async def log_sizes(self) -> dict[str, int]:
        """The committed log pages' bytes on disk (compressed), per job."""
        return await self._run(self._log_sizes)

    async def blocks(self, job_id: str, after_sequence: int, lines: int) -> list[LineBlock]:
        """The committed blocks holding at least ``lines`` lines (or ``PAGE_BYTES``) after
        ``after_sequence``, or all there are, decompressed (only those)."""
        return await self._run(self._read_committed, job_id, after_sequence, lines)

    async def encoded_page(self, job_id: str, after_sequence: int) -> EncodedPage | None:
        """A page of the committed lines after ``after_sequence``, encoded, only those it sends
        (rows hold more); None when there is none."""
        return await self._run(self._read_committed_encoded, job_id, after_sequence)

    async def close(self) -> None:
        await asyncio.to_thread(self.thread.shutdown)
        if self.database is not None:
            self.database.close()

    async def _run(self, read: Callable[..., Result], *args: object) -> Result:
        return await self.loop.run_in_executor(self.thread, read, *args)

    def _read_definition(self, job_id: str) -> bytes:
        row = self._database().execute("SELECT definition FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return row[0] if row else b""

    def _log_sizes(self) -> dict[str, int]:
        return dict(self._database().execute("SELECT job_id, sum(length(payload)) FROM log_pages GROUP BY job_id"))

    def _database(self) -> sqlite3.Connection:
        """The reading thread's connection."""
        if self.database is None:
            self.database = open_database(self.path)
        return self.database

    def _read_committed(self, job_id: str, after_sequence: int, lines: int) -> list[LineBlock]:
        rows = self._database().execute(
            "SELECT first_sequence, last_sequence, payload, compression FROM log_pages"
            " WHERE job_id = ? AND last_sequence > ? ORDER BY last_sequence",
            (job_id, after_sequence),
        )
        blocks: list[LineBlock] = []
        size = 0
        for first, last, data, compression in rows:
            payload = unpacked(data, compression)  # (zlib releases the GIL meanwhile)
            blocks.append(LineBlock(job_id, first, last, payload))
            size += len(payload)
            if last - after_sequence >= lines or size >= PAGE_BYTES:
                break
        return blocks

    def _read_committed_encoded(self, job_id: str, after_sequence: int) -> EncodedPage | None:
        encoded: list[LineBlock] = []
        wanted = PAGE_LINES
        for row in self._read_committed(job_id, after_sequence, PAGE_LINES):
            data, offsets = encode_payload(job_id, row.payload, after_sequence, wanted)
            first = max(row.first_sequence, after_sequence + 1)
            encoded.append(LineBlock(job_id, first, first + len(offsets) - 2, b"", data, offsets))
            wanted -= len(offsets) - 1
        return encoded_page(encoded, after_sequence, LineBlock.messages)
