"""The pytest fixtures that run the platform stand-in as a real subprocess, with the test's
state folder (``home``) and the checkout hidden from its jobs.

``platform`` is a running stand-in with the defaults; ``start_platform(**options)`` starts one
with options: the command line's, named in snake case, in its units (``provisioning_delay=0.05``,
``batch_size=1``, ``flush_interval_ms=10``, ``ping_interval=5``, ``channel_capacity=5000``,
``clock_resolution_ms=1000``; flags as booleans: ``true_sequences=True``).  At the end
of the test every stand-in is stopped, and every job process it started is killed.  Where jobs
cannot run in a mount namespace of their own (not root), the test is skipped with the reason.
``gate`` lets a test hold a job at a point of its script until the test says go.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hodei_stream.endpoint import Server

from .jobs import LISTED_NOTHING

CHECKOUT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
GATE_TIMEOUT_S = 10.0
CANNOT_RUN_ELSEWHERE = 3  # the stand-in's exit status when unshare cannot run here


class Platform:
    """One running stand-in: ``url`` for HODEI_GRPC_URL, ``server`` for the project's clients."""

    def __init__(self, home: Path, **options: float | bool) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="hodei-standin-"))
        self.log_path = self.folder / "standin.log"
        ready_file = self.folder / "address"
        command = [sys.executable, "-m", "tests.platform_standin", "--ready-file", str(ready_file)]
        command += ["--hide", str(home), "--hide", str(CHECKOUT)]
        for name, value in options.items():
            flag = f"--{name.replace('_', '-')}"
            command += ([flag] if value else []) if isinstance(value, bool) else [flag, str(value)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=CHECKOUT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        give_up = time.monotonic() + START_TIMEOUT_S
        while not ready_file.exists():
            if self.process.poll() is not None or time.monotonic() >= give_up:
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait()
                why = self.log_tail()  # before stop() removes the log
                self.stop()
                if self.process.returncode == CANNOT_RUN_ELSEWHERE:
                    pytest.skip(why)
                pytest.fail(f"the platform stand-in did not start:\n{why}")
            time.sleep(0.02)
        self.url = ready_file.read_text().strip()
        self.server = Server(self.url, embedded=False)

    def log_text(self) -> str:
        """What the stand-in logged so far ("" before its log exists)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def listed_nothing(self) -> int:
        """How many ListJobs calls the stand-in answered with no rows so far (from its log)."""
        return self.log_text().count(LISTED_NOTHING)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (the stand-in kills its jobs), SIGKILL after a deadline, then kill any job
        process still running (found by the worker id in its environment)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        kill_jobs_of(self.process.pid)
        shutil.rmtree(self.folder, ignore_errors=True)


def job_processes(standin_pid: int) -> list[int]:
    """The processes of the jobs that stand-in started (their environment names its workers)."""
    marker = f"HODEI_WORKER_ID=standin-{standin_pid}-".encode()
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if any(variable.startswith(marker) for variable in (process / "environ").read_bytes().split(b"\0")):
                found.append(int(process.name))
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return found


def kill_jobs_of(standin_pid: int) -> None:
    for pid in job_processes(standin_pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


class Gate:
    """A FIFO outside the hidden paths: a job's ``read`` of it (``gate.wait`` in its script)
    waits until the test opens it (``gate.open()``), to order a job's steps after the test's."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "gate"
        os.mkfifo(self.path)

    @property
    def wait(self) -> str:
        return f"read -r _ < {self.path}"

    def open(self, timeout: float = GATE_TIMEOUT_S) -> None:
        give_up = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:  # ENXIO: the job is not reading yet
                if time.monotonic() >= give_up:
                    pytest.fail(f"timed out after {timeout:.1f}s waiting for the job to wait at the gate")
                time.sleep(0.01)
        os.write(fd, b"go\n")
        os.close(fd)


@pytest.fixture
def start_platform(home: Path) -> Iterator[Callable[..., Platform]]:
    """``start_platform(**options)``: a new stand-in; all of them stopped at the end of the test."""
    started: list[Platform] = []

    def start(**options: float | bool) -> Platform:
        started.append(Platform(home, **options))
        return started[-1]

    yield start
    for platform in started:
        platform.stop()


@pytest.fixture
def platform(start_platform: Callable[..., Platform]) -> Platform:
    """A running stand-in with the platform's defaults."""
    return start_platform()


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    """A ``Gate`` for one job to wait at."""
    return Gate(tmp_path)
