"""stream-logs against the platform stand-in's faults: each line still shown once, in order,
and the command still ends.  The stand-in is made gentler here: roomy channels, so that a late
subscription is answered at all, and true sequences on every line it forwards."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable

import pytest

from hodei_stream.client import HodeiClient
from hodei_stream.exit_codes import ExitStatus
from tests.conftest import wait_until
from tests.platform_standin.fixture import Gate, Platform
from tests.platform_standin.logs import KEPT

from .streaming import STREAM_LOGS, submit

LOOK_ALIKE = "retrying"
GENTLER = {"provisioning_delay": 0.05, "channel_capacity": 5000, "true_sequences": True}


def numbered(first: int, last: int) -> str:
    return f"for n in $(seq {first} {last}); do echo n=$n; done"


class Follower:
    """stream-logs on a job, its output lines collected as they come."""

    def __init__(self, platform: Platform, job_id: str, *options: str) -> None:
        command = [*STREAM_LOGS, "--server", platform.url, "-q", "--no-timestamps", *options, job_id]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.shown: list[str] = []
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        assert self.process.stdout is not None
        self.shown.extend(line.rstrip("\n") for line in self.process.stdout)

    def wait_shown(self, line: str) -> None:
        wait_until(lambda: line in self.shown or self.process.poll() is not None, timeout=30, what=f"{line!r} shown")

    def finish(self) -> tuple[int, str]:
        """Its exit status and standard error, once it ended."""
        assert self.process.stderr is not None
        status = self.process.wait(60)
        self.reader.join(10)
        return status, self.process.stderr.read()


def kept_lines(platform: Platform, job_id: str) -> int:
    with HodeiClient(platform.server) as client:
        return len(client.get_logs(job_id).entries)


def test_each_line_once_in_order_despite_platform_flaws(start_platform: Callable[..., Platform], gate: Gate) -> None:
    # 1,500 lines before anyone subscribes (the platform keeps the last 1,000 and sends them
    # twice), then 1,500 live ones in batches of 3.
    platform = start_platform(batch_size=3, **GENTLER)
    job_id = submit(platform.server, f"{numbered(1, 1500)}; {gate.wait}; {numbered(1501, 3000)}")
    wait_until(lambda: kept_lines(platform, job_id) == KEPT, what="the lines kept")
    follower = Follower(platform, job_id)
    follower.wait_shown("[OUT] n=1500")
    gate.open()
    status, errors = follower.finish()
    assert status == 0, errors
    numbers = [int(re.fullmatch(r"\[OUT\] n=(\d+)", text).group(1)) for text in follower.shown]  # type: ignore[union-attr]
    # Lines 1-500 were gone from the platform's memory before we came: nobody can show them.
    assert numbers == list(range(1500 - KEPT + 1, 3001))


@pytest.mark.parametrize("options", [[], ["--no-follow"]], ids=["SubscribeLogs", "GetLogs"])
def test_lines_that_only_look_alike_are_each_shown(
    start_platform: Callable[..., Platform], gate: Gate, options: list[str]
) -> None:
    # Without exact sequences, five lines of one write, one text and (on this worker's coarse
    # clock) one instant, sequences 11..15, are five lines; the history sent twice is shown once.
    platform = start_platform(clock_resolution_ms=1000, **GENTLER)
    job_id = submit(platform.server, f"{numbered(1, 10)}; printf '{LOOK_ALIKE}\\n%.0s' 1 2 3 4 5; {gate.wait}")
    wait_until(lambda: kept_lines(platform, job_id) == 15, what="the lines kept")
    follower = Follower(platform, job_id, *options)
    follower.wait_shown(f"[OUT] {LOOK_ALIKE}")
    gate.open()  # the job ends: followed, so does stream-logs (0); --no-follow ended while it ran (5)
    status, errors = follower.finish()
    assert status == (ExitStatus.STILL_RUNNING if options else ExitStatus.OK), errors
    assert follower.shown == [f"[OUT] n={n}" for n in range(1, 11)] + [f"[OUT] {LOOK_ALIKE}"] * 5
