"""Run a client the way a person or a script would, and time every byte it prints.

The client's stdout is a real pseudo-terminal (what a person sees) or a pipe (``| grep``);
its stderr (banners) goes to /dev/null.  Each chunk read is stamped with ``time.time_ns()``,
the same clock the benchmark jobs stamp their lines with.  Every run has a deadline, after
which the client's whole process group (a pipeline's grpcurl, bash and jq too) is killed.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hodei_stream.bench.measure import STAMP

READ_SIZE = 1 << 16


@dataclass
class Capture:
    chunks: list[tuple[int, bytes]]  # (arrival ns since the epoch, bytes) in read order
    started_ns: int  # just before the client was started
    status: int | None  # the exit status; None when it was stopped (deadline or first line)
    timed_out: bool


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the client and everything it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def capture(
    argv: Sequence[str],
    *,
    tty: bool,
    deadline_s: float,
    first_line_only: bool = False,
    env: Mapping[str, str] | None = None,
) -> Capture:
    """Run ``argv`` until it exits, the deadline passes, or (``first_line_only``) the first
    stamped line arrived; everything it printed on stdout, timed."""
    reader, writer = pty.openpty() if tty else os.pipe()
    started_ns = time.time_ns()
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=writer,
        stderr=subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    os.close(writer)
    chunks: list[tuple[int, bytes]] = []
    seen = b""
    give_up = time.monotonic() + deadline_s
    stopped = timed_out = False
    try:
        while True:
            left = give_up - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([reader], [], [], min(left, 0.5))
            if not ready:
                continue
            try:
                chunk = os.read(reader, READ_SIZE)
            except OSError:  # EIO: every writer of the pty is gone
                chunk = b""
            if not chunk:
                break
            chunks.append((time.time_ns(), chunk))
            if first_line_only:
                seen += chunk
                match = STAMP.search(seen)
                if match is not None and b"\n" in seen[match.end() :]:
                    stopped = True
                    break
    finally:
        os.close(reader)
        if timed_out or stopped:
            stop_group(process)
    status = None if (timed_out or stopped) else process.wait()
    return Capture(chunks, started_ns, status, timed_out)
