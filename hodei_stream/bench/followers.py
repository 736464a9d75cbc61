"""Many followers in one process, so that what the fan-out and load scenarios measure is the
server, not the followers.

One follower process per scenario holds every stream: the native client's ``--streams``
mode (one thread, gRPC C++'s async API, each follower on its own connection), or
``minimal_client.py --streams`` (grpcio, a thread each) when the native client is not built.
Either keeps ``<follower> <arrival_ns> <line>`` per line in memory and prints it when every
stream has ended, into a file, so nothing is read while the lines flow.  A follower process
per follower (200 of them) used most of the 2 cores of the machine the server was measured on.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from hodei_stream.bench.measure import Arrival, recorded_streams
from hodei_stream.bench.tools import Tools


def follower_argv(tools: Tools, count: int, target: str, job_ids: Sequence[str]) -> tuple[str, list[str]]:
    """The follower kind and its command line: ``count`` followers, follower i on ``job_ids[i % len]``."""
    if tools.native_client is not None:
        return "native", [str(tools.native_client), "--streams", str(count), target, *job_ids]
    return "python-grpcio", [
        sys.executable,
        "-m",
        "hodei_stream.bench.minimal_client",
        "--streams",
        str(count),
        target,
        *job_ids,
    ]


class Followers:
    """``count`` followers of ``job_ids`` in one process, recording into ``output``."""

    def __init__(self, tools: Tools, count: int, target: str, job_ids: Sequence[str], output: Path) -> None:
        self.count = count
        self.output = output
        self.kind, argv = follower_argv(tools, count, target, job_ids)
        with output.open("wb") as out, output.with_suffix(".err").open("wb") as err:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)

    def wait(self, deadline_s: float) -> bool:
        """Wait until every stream ended (the process exits), or kill it at the deadline;
        whether it ended by itself."""
        try:
            self.process.wait(max(0.1, deadline_s))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False
        return True

    def records(self) -> list[list[Arrival]]:
        """What each follower received, in arrival order (after ``wait``)."""
        return recorded_streams(self.output.read_bytes(), self.count)

    def errors(self) -> str:
        return self.output.with_suffix(".err").read_text(errors="replace").strip()
