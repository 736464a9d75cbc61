"""The job's processes, as its supervisor controls them: started in a process group of their
own with stdin from /dev/null and stdout and stderr each on a pseudo-terminal in raw mode;
stopped on a cancel or at the execution timeout with SIGTERM to the whole group, and SIGKILL
after a grace."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import tty

from hodei_stream.server.supervisor_protocol import Exited, JobCommand


class JobProcess:
    """One job's process group, from its start to its reaping."""

    def __init__(self, spec: JobCommand) -> None:
        self.spec = spec
        self.stop_reason: str | None = None  # "cancelled" or "timeout" once we stop the job
        self.timeout_at: float | None = None
        self.kill_at: float | None = None
        self.pid: int | None = None  # once started

    def start(self) -> dict[bool, int]:
        """Start the job; the master ends of its terminals, by ``is_stderr``.  Raises OSError
        when it cannot start.

        Raw mode: no echo and no output post-processing (so no ``\\n`` → ``\\r\\n``).  C stdio
        and python3 line-buffer a terminal, so a job that never flushes still hands over each
        line as it prints it."""
        masters: dict[bool, int] = {}
        slaves: dict[bool, int] = {}
        for is_stderr in (False, True):
            masters[is_stderr], slaves[is_stderr] = os.openpty()
            tty.setraw(slaves[is_stderr])
        try:
            self.process = subprocess.Popen(
                [self.spec.command, *self.spec.arguments],
                stdin=subprocess.DEVNULL,
                stdout=slaves[False],
                stderr=slaves[True],
                env=self.spec.environment,
                cwd=self.spec.working_directory,
                start_new_session=True,  # its own session and process group: killpg reaches all of it
            )
        finally:
            for fd in slaves.values():
                os.close(fd)  # only the job holds the terminals now: EOF comes when it closes them
        self.pid = self.process.pid
        if self.spec.timeout_s:
            self.timeout_at = time.monotonic() + self.spec.timeout_s
        return masters

    def begin_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.signal_group(signal.SIGTERM)
            self.kill_at = time.monotonic() + self.spec.kill_grace_s

    def keep_time(self, now: float) -> None:
        """Stop the job once its timeout is reached, and kill its group once the grace is over."""
        if self.timeout_at is not None and now >= self.timeout_at:
            self.begin_stop("timeout")
            self.timeout_at = None
        if self.kill_at is not None and now >= self.kill_at:
            self.signal_group(signal.SIGKILL)
            self.kill_at = None

    def deadlines_in(self, now: float) -> list[float]:
        """Seconds until the timeout and the kill, those that are set."""
        return [t - now for t in (self.timeout_at, self.kill_at) if t is not None]

    def group_alive(self) -> bool:
        """Some process of the job's process group still exists."""
        try:
            os.killpg(self.pid, 0)  # type: ignore[arg-type]
        except ProcessLookupError:
            return False
        return True

    def signal_group(self, signum: int) -> None:
        if self.pid is None:
            return  # not started: there is nothing to stop
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass  # the whole group is gone already

    def reap(self) -> int:
        """The exit status of the job's main process, which has ended; once a stop began, what
        the group left behind is killed too."""
        exit_status = self.process.wait()
        if self.stop_reason is not None:
            self.signal_group(signal.SIGKILL)
        return exit_status

    def outcome(self, exit_status: int) -> Exited:
        return Exited.of_exit_status(exit_status, self.stop_reason, time.time_ns())
