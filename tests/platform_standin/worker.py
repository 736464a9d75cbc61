"""The platform's worker, one per job, provisioned elsewhere: it runs the job where nothing of
the client is visible and sends the job's lines and result to the server.

"Elsewhere" is a mount namespace of the job's own (``unshare --mount``, as root) in which each
hidden path (the client's state folder, the checkout) is covered by an empty tmpfs, and the
workers' folder by a fresh tmpfs holding only this job's working folder.  A job may write
under a hidden path, as on a worker's own disk: it sees what it wrote, nobody else does, and
it is gone with the job.  The job gets a small
worker environment plus its own, stdin as a pipe never written, and a process group of its own
(only so that the stand-in can stop every job it started; a timeout kills the direct child only).

Lines, as the platform's worker reads them: each pipe line by line, a trailing CR dropped,
timestamped when read; a line that is not UTF-8 ends the reading of that pipe.  They go out in
batches of ``batch_size`` lines or every ``flush_interval_s``, through a channel of
``OUTGOING_CAPACITY`` messages to the server; a batch that finds no room within
``SEND_TIMEOUT_S`` is dropped.  The result follows the last batch and waits for room.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hodei_stream.proto import hodei_pb2 as pb

from .channel import Channel

OUTGOING_CAPACITY = 100  # messages between the worker and the server
SEND_TIMEOUT_S = 5.0  # a batch waits this long for room, then is dropped
LINE_LIMIT = 16 * 1024 * 1024  # bytes of one line the reader holds
WORKER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Run by the stand-in's interpreter inside the job's namespace (``-I -S``: the standard library
# only, since the checkout is about to disappear), then replaced by the job's command, which
# follows the plan in its argv (each argument its own, as the job's exec will have them).  A setup
# or exec failure is written to the status pipe, which the command's exec closes otherwise.
ENTER_ELSEWHERE = """
import json, os, subprocess, sys
plan = json.loads(sys.argv[1])
status = plan["status_fd"]
try:
    for path in plan["hide"]:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "elsewhere", path], check=True)
    os.makedirs(plan["workers"], exist_ok=True)  # a hidden path may have covered it
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "worker", plan["workers"]], check=True)
    os.mkdir(plan["folder"])
    os.chdir(plan["folder"])
except (OSError, subprocess.CalledProcessError) as error:
    os.write(status, f"the worker could not be provisioned: {error}".encode())
    os._exit(126)
os.set_inheritable(status, False)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as error:
    reason = f"{os.strerror(error.errno)} (os error {error.errno})" if error.errno else str(error)
    os.write(status, f"Failed to spawn command '{sys.argv[2]}': {reason}".encode())
    os._exit(127)
"""


@dataclass(frozen=True)
class WorkerSettings:
    """How every worker of one stand-in runs its job."""

    hidden_paths: tuple[Path, ...]
    workers_folder: Path  # covered by a fresh tmpfs in each job's namespace
    batch_size: int = 100
    flush_interval_s: float = 0.25
    clock_resolution_ns: int = 1  # a coarse worker clock stamps lines of one write alike


@dataclass(frozen=True)
class Outcome:
    """What the worker reports when the job is over."""

    exit_code: int | None  # None: the job never ran (spawn error) or was killed on its timeout
    error: str = ""  # the spawn error, or the timeout's message
    timed_out: bool = False


class Batcher:
    """The worker's log batcher: lines in, batches out to the server."""

    def __init__(self, job_id: str, outgoing: Channel[pb.LogBatch | Outcome], batch_size: int) -> None:
        self.job_id = job_id
        self.outgoing = outgoing
        self.batch_size = batch_size
        self.entries: list[pb.LogEntry] = []
        self.lock = asyncio.Lock()  # held while a batch waits for room: the readers wait too

    async def push(self, entry: pb.LogEntry) -> None:
        async with self.lock:
            self.entries.append(entry)
            if len(self.entries) >= self.batch_size:
                await self.send_batch()

    async def flush(self) -> None:
        async with self.lock:
            await self.send_batch()

    async def flush_every(self, interval_s: float) -> None:
        """The worker's auto-flush: a batch every ``interval_s``, whatever it holds."""
        while True:
            await asyncio.sleep(interval_s)
            await self.flush()

    async def send_batch(self) -> None:
        if not self.entries:
            return
        batch = pb.LogBatch(job_id=self.job_id, entries=self.entries)
        self.entries = []
        try:
            await asyncio.wait_for(self.outgoing.send(batch), SEND_TIMEOUT_S)
        except asyncio.TimeoutError:
            print(
                f"job {self.job_id}: a batch of {len(batch.entries)} lines dropped (no room for {SEND_TIMEOUT_S:g} s)",
                file=sys.stderr,
            )


class Workers:
    """Provisions a worker for each job and keeps track of the jobs' process groups."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.process_groups: set[int] = set()  # every job's, kept: what a job left behind runs in it
        self.started = 0

    def worker_id(self, number: int) -> str:
        """Marks a job's environment, so that whoever started this stand-in can find its jobs."""
        return f"standin-{os.getpid()}-{number}"

    def environment(self, worker_id: str, folder: Path, job_environment: dict[str, str]) -> dict[str, str]:
        worker = {
            "PATH": WORKER_PATH,
            "HOME": str(folder),
            "LANG": "C.UTF-8",
            "HOSTNAME": worker_id,
            "HODEI_WORKER_ID": worker_id,
            "HODEI_LOG_BATCH_SIZE": str(self.settings.batch_size),
            "HODEI_LOG_FLUSH_INTERVAL": str(round(self.settings.flush_interval_s * 1000)),
        }
        return {**worker, **job_environment}

    async def run(
        self,
        job_id: str,
        command: list[str],
        job_environment: dict[str, str],
        timeout_s: int,
        outgoing: Channel[pb.LogBatch | Outcome],
        on_start: Callable[[], None],
    ) -> None:
        """Run the job (``on_start`` once its process runs), send its lines, then its
        ``Outcome``, then close ``outgoing``: the worker goes away."""
        self.started += 1
        worker_id = self.worker_id(self.started)
        folder = self.settings.workers_folder / f"job-{job_id}"
        process, spawn_error = await self.spawn(command, self.environment(worker_id, folder, job_environment), folder)
        if process is None:
            await outgoing.send(Outcome(exit_code=None, error=spawn_error))
            await outgoing.close()
            return
        self.process_groups.add(process.pid)
        on_start()
        batcher = Batcher(job_id, outgoing, self.settings.batch_size)
        flusher = asyncio.create_task(batcher.flush_every(self.settings.flush_interval_s))
        try:
            exit_code = await asyncio.wait_for(self.stream_output(job_id, process, batcher), timeout_s)
        except asyncio.TimeoutError:
            process.kill()  # the direct child only; what it started runs on
            error = f"TIMEOUT: Job timed out after {timeout_s} seconds"
            await outgoing.send(Outcome(exit_code=None, error=error, timed_out=True))
            # The platform's auto-flush outlives a timed-out job: what it held goes out after the result.
            await asyncio.sleep(self.settings.flush_interval_s * 1.5)
        else:
            flusher.cancel()
            await batcher.flush()
            await outgoing.send(Outcome(exit_code=exit_code))
        flusher.cancel()
        await outgoing.close()  # the worker goes away

    async def spawn(
        self, command: list[str], environment: dict[str, str], folder: Path
    ) -> tuple[asyncio.subprocess.Process | None, str]:
        """The job's process, or None and the spawn error."""
        status_read, status_write = os.pipe()
        plan = {
            "hide": [str(path) for path in self.settings.hidden_paths],
            "workers": str(self.settings.workers_folder),
            "folder": str(folder),
            "status_fd": status_write,
        }
        try:
            process = await asyncio.create_subprocess_exec(
                "unshare", "--mount", "--propagation", "private", "--",
                sys.executable, "-I", "-S", "-c", ENTER_ELSEWHERE, json.dumps(plan), *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=environment,
                pass_fds=(status_write,),
                start_new_session=True,
                limit=LINE_LIMIT,
            )  # fmt: skip
        except OSError as error:
            os.close(status_read)
            return None, f"Failed to spawn command '{command[0]}': {error}"
        finally:
            os.close(status_write)
        failure = await asyncio.get_running_loop().run_in_executor(None, read_to_end, status_read)
        if failure:
            await process.wait()
            return None, failure.decode(errors="replace")
        return process, ""

    async def stream_output(self, job_id: str, process: asyncio.subprocess.Process, batcher: Batcher) -> int:
        """Read both pipes to their end, then wait for the process: its exit code (-1: a signal)."""
        assert process.stdout is not None and process.stderr is not None
        await asyncio.gather(
            read_lines(job_id, process.stdout, False, batcher, self.settings.clock_resolution_ns),
            read_lines(job_id, process.stderr, True, batcher, self.settings.clock_resolution_ns),
        )
        returncode = await process.wait()
        return returncode if returncode >= 0 else -1

    def kill_all(self) -> None:
        """SIGKILL every job's process group (the stand-in is stopping)."""
        for group in self.process_groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process_groups.clear()


def read_to_end(fd: int) -> bytes:
    """Everything written to the pipe ``fd`` until its last writer closed it; closes it."""
    chunks = []
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(4096):
            chunks.append(chunk)
    return b"".join(chunks)


async def read_lines(
    job_id: str, pipe: asyncio.StreamReader, is_stderr: bool, batcher: Batcher, clock_resolution_ns: int
) -> None:
    """Each line of ``pipe`` to the batcher, stamped when read, until the end or a line that is
    not UTF-8 (or longer than ``LINE_LIMIT``): then this pipe is no longer read."""
    while True:
        try:
            raw = await pipe.readline()
        except ValueError:
            return
        if not raw:
            return
        captured_ns = time.time_ns() // clock_resolution_ns * clock_resolution_ns
        raw = raw.removesuffix(b"\n").removesuffix(b"\r")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return
        entry = pb.LogEntry(job_id=job_id, line=line, is_stderr=is_stderr)
        entry.timestamp.FromNanoseconds(captured_ns)
        await batcher.push(entry)
