"""stream-logs against a server with the real platform's flaws: each line still shown once,
in order, and the command still ends."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hodei_stream.exit_codes import ExitStatus
from tests.conftest import wait_until

from .platform_like import JOB_ID, KEPT, LOOK_ALIKE
from .streaming import STREAM_LOGS

HERE = Path(__file__).parent


@pytest.fixture
def start_platform_like(home: Path) -> Iterator[Callable[..., str]]:
    """Start ``platform_like.py`` with these options; its target."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*options: str) -> str:
        socket = home / f"platform{len(processes)}.sock"
        processes.append(subprocess.Popen([sys.executable, str(HERE / "platform_like.py"), f"unix:{socket}", *options]))
        wait_until(
            lambda: Path(f"{socket}.ready").exists() or processes[-1].poll() is not None,
            what="the platform-like server",
        )
        assert processes[-1].poll() is None
        return f"unix:{socket}"

    yield start
    for process in processes:
        process.kill()
        process.wait()


@pytest.fixture
def platform_like(start_platform_like: Callable[..., str]) -> str:
    return start_platform_like("--history", "1500", "--live", "1500")


def test_each_line_once_in_order_despite_platform_flaws(platform_like: str) -> None:
    result = subprocess.run(
        [*STREAM_LOGS, "--server", platform_like, "-q", "--no-timestamps", JOB_ID],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    numbers = [int(re.fullmatch(r"\[OUT\] n=(\d+)", text).group(1)) for text in result.stdout.splitlines()]
    # Lines 1-500 were gone from the platform's memory before we came: nobody can show them.
    assert numbers == list(range(1500 - KEPT + 1, 3001))


@pytest.mark.parametrize("options", [[], ["--no-follow"]], ids=["SubscribeLogs", "GetLogs"])
def test_lines_that_only_look_alike_are_each_shown(start_platform_like: Callable[..., str], options: list[str]) -> None:
    # Without exact sequences, five lines of one instant and one text, sequences 11..15,
    # are five lines; the history the platform sends twice is still shown once.
    target = start_platform_like("--history", "10", "--look-alikes", "5", "--live", "0")
    result = subprocess.run(
        [*STREAM_LOGS, "--server", target, "-q", "--no-timestamps", *options, JOB_ID],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Followed, the job ends (0); with --no-follow the platform's job is still running (5).
    assert result.returncode == (ExitStatus.STILL_RUNNING if options else ExitStatus.OK), result.stderr
    assert result.stdout.splitlines() == [f"[OUT] n={n}" for n in range(1, 11)] + [f"[OUT] {LOOK_ALIKE}"] * 5
