"""The servers the benchmark runs against, each started and stopped by the benchmark.

- ``EmbeddedServerProcess``: ``hodei-server run`` on a Unix socket in a fresh state folder.
  The worker's LogBatcher is set per server with ``--batch-capacity``/``--batch-flush-ms``
  (a server takes its settings at start, so each setting is its own server).  Its peak
  memory is the kernel's high-water mark of its resident set (``VmHWM``).
- ``NativeServerProcess``: the C++ stand-in that sends a million entries as fast as gRPC
  C++ can, so a client's own limit shows, not the server's.
- A user's own platform (``--server URL``) is only pointed at, never started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hodei_stream.state_folder import is_answering

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0


class ServerStartError(RuntimeError):
    pass


def wait_answering(target: str, process: subprocess.Popen[bytes], what: str) -> None:
    give_up = time.monotonic() + START_TIMEOUT_S
    while not is_answering(target):
        if process.poll() is not None or time.monotonic() >= give_up:
            process.kill()
            process.wait()
            raise ServerStartError(f"{what} did not start")
        time.sleep(0.02)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class EmbeddedServerProcess:
    """The embedded server with the given LogBatcher settings, in its own temporary home."""

    def __init__(self, batch_capacity: int | None = None, batch_flush_ms: float | None = None) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="hb-"))  # short: a socket path fits in ~107 bytes
        self.target = f"unix:{self.home / 'server.sock'}"
        options = []
        if batch_capacity is not None:
            options += ["--batch-capacity", str(batch_capacity)]
        if batch_flush_ms is not None:
            options += ["--batch-flush-ms", str(batch_flush_ms)]
        self.log = (self.home / "server.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hodei_stream.server.daemon", "run", "--listen", self.target, *options],
            env={**os.environ, "HODEI_STREAM_HOME": str(self.home)},
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_answering(self.target, self.process, "the embedded server")

    def memory_kib(self) -> tuple[int, int]:
        """(resident now, peak resident) in KiB, from /proc."""
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values["VmRSS"], values["VmHWM"]

    def cpu_s(self) -> float:
        """User and system CPU time the server used so far (its own threads, not its
        supervisors)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        stop(self.process)
        self.log.close()
        shutil.rmtree(self.home, ignore_errors=True)


class NativeServerProcess:
    """The C++ stand-in server: every SubscribeLogs gets ``lines`` entries at full speed."""

    def __init__(self, binary: Path, lines: int) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="hn-"))
        self.target = f"unix:{self.home / 'native.sock'}"
        self.process = subprocess.Popen(
            [str(binary), self.target, str(lines)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_answering(self.target, self.process, "the native stand-in server")

    def close(self) -> None:
        stop(self.process)
        shutil.rmtree(self.home, ignore_errors=True)
