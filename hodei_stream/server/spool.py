"""What a job's supervisor keeps on disk so that the job outlives its server.

Per job, in ``<state folder>/spool/``:

- ``<job_id>.lines``: every line the job wrote, appended batch by batch in the layout of a
  ``LINES`` message's payload (``supervisor_protocol.LINE_HEADER`` + UTF-8 text), so that a supervisor can
  hand a restarted server whatever it lacks, and a server can import the lines of a
  supervisor that died.  A record cut short by a crash is ignored when read.
- ``<job_id>.json``: the supervisor's pid and the job's pid, each with the process's start
  time, so that a restarted server can tell whether they still run (a pid alone may have
  been reused).
- ``<job_id>.exit``: the job's outcome (the ``EXITED`` report) once the job has ended.

The supervisor removes all three once the server confirmed it stored everything.

A full disk (or an I/O error) does not stop a job: batches the spool cannot write wait in the
supervisor's memory (up to ``MAX_UNWRITTEN_BYTES``) and are written, in order, with the next
batch that can be; the supervisor still sends them to the server and hands them over on a
resume.  The state and exit files are best effort: the server learns the same over the socket.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from hodei_stream.server.supervisor_protocol import LINE_HEADER, Exited

SPOOL_FOLDER_NAME = "spool"
# A resume reads the spool from the last mark at or before the wanted sequence: one mark per
# this many bytes keeps the marks few and a resume's skipped reading short.
MARK_EVERY_BYTES = 1 << 20
# Lines handed over (to the server, or to the store on import) in payloads of about this size.
PAYLOAD_BYTES = 1 << 20
# Batches a full disk keeps out of the spool file, at most: beyond, the supervisor gives up.
MAX_UNWRITTEN_BYTES = 64 << 20


def process_start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot), None when it is gone.

    With the pid it names one process for good: a pid the kernel reused has another start
    time.  A zombie counts as gone: it runs nothing any more.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: parse after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_running(pid: int, start_time: int | None) -> bool:
    return pid > 0 and process_start_time(pid) == start_time


class JobSpool:
    """One job's spool files; either side may read them, only the supervisor writes lines."""

    def __init__(self, folder: Path, job_id: str) -> None:
        self.lines_path = folder / f"{job_id}.lines"
        self.state_path = folder / f"{job_id}.json"
        self.exit_path = folder / f"{job_id}.exit"
        self.job_id = job_id
        self.size = 0
        self.marks: list[tuple[int, int]] = []  # (first sequence of a batch, its offset)
        self.fd: int | None = None
        self.unwritten: list[tuple[bytes, int]] = []  # batches the disk did not take yet, in order
        self.unwritten_bytes = 0

    # ---- the supervisor's side -----------------------------------------------------------

    def open_for_append(self) -> None:
        self.lines_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.fd = os.open(self.lines_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.size = os.fstat(self.fd).st_size

    def append(self, payload: bytes, first_sequence: int) -> None:
        """Add a batch (a LINES payload) whose first line has ``first_sequence``: to the file,
        after any batches still waiting for room.  Raises ``OSError`` only when more than
        ``MAX_UNWRITTEN_BYTES`` wait."""
        self.unwritten.append((payload, first_sequence))
        self.unwritten_bytes += len(payload)
        while self.unwritten and self._write(*self.unwritten[0]):
            self.unwritten_bytes -= len(self.unwritten.pop(0)[0])
        if self.unwritten_bytes > MAX_UNWRITTEN_BYTES:
            raise OSError(f"cannot write the spool {self.lines_path}, and {self.unwritten_bytes} bytes wait")

    def _write(self, payload: bytes, first_sequence: int) -> bool:
        """Write one batch whole, or nothing of it (False: the disk refused it)."""
        assert self.fd is not None
        try:
            written = 0
            while written < len(payload):  # a regular file takes it all at once, short of a full disk
                written += os.write(self.fd, payload[written:])
        except OSError:
            os.ftruncate(self.fd, self.size)  # no half record: it would hide the records after it
            return False
        if not self.marks or self.size - self.marks[-1][1] >= MARK_EVERY_BYTES:
            self.marks.append((first_sequence, self.size))
        self.size += written
        return True

    def write_state(self, state: dict[str, Any]) -> None:
        write_best_effort(self.state_path, state)

    def write_exit(self, report: Exited) -> None:
        write_best_effort(self.exit_path, report._asdict())

    def remove(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        for path in (self.lines_path, self.state_path, self.exit_path):
            path.unlink(missing_ok=True)

    # ---- either side -------------------------------------------------------------------

    def payloads_after(self, after_sequence: int) -> Iterator[bytes]:
        """The spooled lines with sequence > ``after_sequence``, as LINES payloads of whole
        records (about ``PAYLOAD_BYTES`` each), oldest first."""
        start = max((offset for first, offset in self.marks if first <= after_sequence + 1), default=0)
        try:
            spool = self.lines_path.open("rb")
        except FileNotFoundError:
            return
        chunk = bytearray()
        with spool:
            spool.seek(start)
            for source in (spool, io.BytesIO(b"".join(payload for payload, _first in self.unwritten))):
                for record in records_after(source, after_sequence):
                    chunk += record
                    if len(chunk) >= PAYLOAD_BYTES:
                        yield bytes(chunk)
                        chunk.clear()
        if chunk:
            yield bytes(chunk)

    def read_state(self) -> dict[str, Any]:
        return read_json(self.state_path)

    def read_exit(self) -> dict[str, Any]:
        return read_json(self.exit_path)


def records_after(source: BinaryIO, after_sequence: int) -> Iterator[bytes]:
    """The whole line records in ``source`` with sequence > ``after_sequence``."""
    while len(header := source.read(LINE_HEADER.size)) == LINE_HEADER.size:
        sequence, _ns, _stderr, size = LINE_HEADER.unpack(header)
        text = source.read(size)
        if len(text) < size:
            return  # the last record was cut short
        if sequence > after_sequence:
            yield header + text


def write_best_effort(path: Path, value: dict[str, Any]) -> None:
    """``write_atomically``, or nothing (and no partial file) when the disk refuses it."""
    try:
        write_atomically(path, value)
    except OSError:
        path.with_suffix(path.suffix + ".partial").unlink(missing_ok=True)


def write_atomically(path: Path, value: dict[str, Any]) -> None:
    """Write JSON so that a reader sees the old content or the new, never half of it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(value))
    partial.chmod(0o600)
    partial.replace(path)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; empty when the file is missing or unreadable."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
