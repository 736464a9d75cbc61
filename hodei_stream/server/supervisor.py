"""The small process that runs one job: ``python -m hodei_stream.server.supervisor``.

Why a process of its own per job (as conmon or containerd-shim do for containers): it owns
the job's output and exit, so the server only ever talks to it over a socket, and the job
outlives its server: a restart of the server costs the job nothing.

What it does, each part in a module of its own:
- starts the job and stops it (``job_process``): a process group of its own under two
  pseudo-terminals (stdout, stderr); the execution timeout and the server's cancel send
  SIGTERM to the whole group, SIGKILL after a grace;
- reads both terminals and cuts what it reads into lines (``output_lines``);
- numbers the lines (1, 2, 3… across both streams in the order they were read), stamps each
  with its capture time, spools and sends them in batches (``supervisor_link``), never
  blocking on the server, and reconnects to a server that went away, which resumes from the
  spool: so a restart of the server costs the job nothing;
- when the job's main process has exited, reads what is left for a short, bounded time (a
  daemon the job forked may hold the terminal open forever) and reports the exit.

Once the job has ended and the server confirmed (``DONE``) that it stored everything, the
spool is removed and the supervisor exits; a supervisor whose server does not come back
within ``linger_s`` exits and leaves the spool (and the job's outcome) for the next server
to import.
"""

from __future__ import annotations

import json
import os
import selectors
import sys
import time
from pathlib import Path

from hodei_stream.server.job_process import JobProcess
from hodei_stream.server.output_lines import LineSplitter
from hodei_stream.server.spool import JobSpool, process_start_time
from hodei_stream.server.supervisor_link import LogBatcher, WorkerLink
from hodei_stream.server.supervisor_protocol import Exited, JobCommand, Started

READ_CHUNK = 1 << 16
# After the main process exited: a read that finds nothing new for this long means the
# output is drained (what the job wrote before exiting is readable at once).
DRAIN_IDLE_S = 0.05


class Supervisor:
    """One job's run: its process, its terminals' output and the link that carries its lines."""

    def __init__(self, job_id: str, spec: JobCommand, socket_path: str) -> None:
        self.spec = spec
        self.spool = JobSpool(Path(spec.spool_directory), job_id)
        self.selector = selectors.DefaultSelector()
        self.splitters = {False: LineSplitter(), True: LineSplitter()}
        self.job = JobProcess(spec)
        batcher = LogBatcher(spec.batch_capacity, spec.batch_flush_interval_s)
        self.link = WorkerLink(job_id, socket_path, self.spool, self.selector, batcher, self.job.begin_stop)

    def start(self) -> bool:
        """Start the job; False (after telling the server why) when it cannot start."""
        try:
            masters = self.job.start()
        except OSError as error:
            reason = error.strerror or str(error)
            self.link.report_exit(
                Exited.never_ran("failed", f"cannot start '{self.spec.command}': {reason}", time.time_ns())
            )
            return False
        pid = self.job.process.pid
        for is_stderr, fd in masters.items():
            self.selector.register(fd, selectors.EVENT_READ, is_stderr)
        self.pidfd = os.pidfd_open(pid)
        self.selector.register(self.pidfd, selectors.EVENT_READ, "exited")
        self.spool.write_state({**self.spool.read_state(), "job_pid": pid, "job_start_time": process_start_time(pid)})
        self.link.report_started(Started(pid, time.time_ns()))
        return True

    def on_output(self, fd: int, is_stderr: bool) -> None:
        try:
            chunk = os.read(fd, READ_CHUNK)
        except OSError:  # EIO: every holder of the terminal closed it
            chunk = b""
        if chunk:
            self.link.add_lines(self.splitters[is_stderr].feed(chunk), is_stderr)
        else:
            self.close_output(fd, is_stderr)

    def close_output(self, fd: int, is_stderr: bool) -> None:
        self.selector.unregister(fd)
        os.close(fd)
        self.link.add_lines(self.splitters[is_stderr].finish(), is_stderr)

    def outputs_open(self) -> list[tuple[int, bool]]:
        return [(key.fd, key.data) for key in self.selector.get_map().values() if isinstance(key.data, bool)]

    def run(self) -> None:
        self.spool.open_for_append()
        pid = os.getpid()
        self.spool.write_state({"supervisor_pid": pid, "supervisor_start_time": process_start_time(pid)})
        self.greet()
        if self.job.stop_reason is not None:  # cancelled before it started
            self.link.report_exit(Exited.never_ran(self.job.stop_reason, "", time.time_ns()))
        elif self.start():
            self.follow_job()
        self.hand_over()

    def greet(self) -> None:
        """Before the job starts: connect and wait (at most ``HANDSHAKE_TIMEOUT_S``) for the
        server's answer, which may be that the job is cancelled already."""
        link = self.link
        link.connect()
        while link.connection is not None and not link.resumed and self.job.stop_reason is None:
            wait_s = link.handshake_deadline - time.monotonic()
            if wait_s <= 0:
                link.disconnect()
                return
            for _key, mask in self.selector.select(wait_s):
                link.on_event(mask)

    def follow_job(self) -> None:
        """Capture the job's output until it exited and its output is drained; report the exit."""
        exit_status: int | None = None
        drain_until = 0.0
        while True:
            now = time.monotonic()
            self.job.keep_time(now)
            if self.link.batcher.due_in(now) == 0.0:
                self.link.flush()
            # The drain's deadline is for processes the job left behind holding the terminal;
            # with none left, what is in the terminal is read to its end, however busy we were.
            if exit_status is not None and (not self.outputs_open() or (now >= drain_until and self.job.group_alive())):
                break
            wakeups = self.job.deadlines_in(now)
            if (due := self.link.batcher.due_in(now)) is not None:
                wakeups.append(due)
            if exit_status is not None:
                wakeups.append(min(DRAIN_IDLE_S, drain_until - now))
            # (Not while draining: a wake-up there must mean "nothing more to read".)
            elif (server_due := self.link.wakeup(now)) is not None:
                wakeups.append(server_due)
            events = self.selector.select(max(0.0, min(wakeups)) if wakeups else None)
            if exit_status is not None and not events:
                break  # nothing more arrived: what the job wrote before exiting is all read
            for key, mask in events:
                if isinstance(key.data, bool):
                    self.on_output(key.fd, key.data)
                elif key.data == "server":
                    self.link.on_event(mask)
                else:
                    self.selector.unregister(self.pidfd)
                    os.close(self.pidfd)
                    exit_status = self.job.reap()
                    drain_until = time.monotonic() + self.spec.drain_after_exit_s
        for fd, is_stderr in self.outputs_open():
            self.close_output(fd, is_stderr)
        assert exit_status is not None
        self.link.report_exit(self.job.outcome(exit_status))

    def hand_over(self) -> None:
        """After the job: wait (reconnecting as needed, at most ``linger_s``) until the server
        confirms it has every line and the outcome, then forget the spool.  A supervisor that
        gives up leaves the spool to the next server, which imports it."""
        give_up = time.monotonic() + self.spec.linger_s
        while not self.link.done:
            now = time.monotonic()
            if now >= give_up:
                return
            waits = [give_up - now]
            if (server_due := self.link.wakeup(now)) is not None:
                waits.append(server_due)
            for key, mask in self.selector.select(max(0.0, min(waits))):
                if key.data == "server":
                    self.link.on_event(mask)
        self.spool.remove()


USAGE = "usage: python -m hodei_stream.server.supervisor --socket WORKER_SOCKET --job-id JOB_ID < JOB_COMMAND_JSON"


def main(argv: list[str] | None = None) -> int:
    """Run one job for the embedded server (which alone starts this; so no argparse, which
    would cost every job's supervisor ~5 % more start-up)."""
    arguments = sys.argv[1:] if argv is None else argv
    options = dict(zip(arguments[::2], arguments[1::2], strict=True)) if len(arguments) % 2 == 0 else {}
    if len(arguments) != 4 or options.keys() != {"--socket", "--job-id"}:
        print(USAGE, file=sys.stderr)
        return 2
    spec = JobCommand(**json.load(sys.stdin))
    Supervisor(options["--job-id"], spec, options["--socket"]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
