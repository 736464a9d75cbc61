"""stream-logs against a server with the real platform's flaws: each line still shown once,
in order, and the command still ends."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until

from .platform_like import JOB_ID, KEPT
from .streaming import STREAM_LOGS

HERE = Path(__file__).parent


@pytest.fixture
def platform_like(home: Path) -> Iterator[str]:
    socket = home / "platform.sock"
    process = subprocess.Popen([sys.executable, str(HERE / "platform_like.py"), f"unix:{socket}", "--history", "1500", "--live", "1500"])
    wait_until(lambda: Path(f"{socket}.ready").exists() or process.poll() is not None, what="the platform-like server")
    assert process.poll() is None
    yield f"unix:{socket}"
    process.kill()
    process.wait()


def test_each_line_once_in_order_despite_platform_flaws(platform_like: str) -> None:
    result = subprocess.run(
        [*STREAM_LOGS, "--server", platform_like, "-q", "--no-timestamps", JOB_ID], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    numbers = [int(re.fullmatch(r"\[OUT\] n=(\d+)", text).group(1)) for text in result.stdout.splitlines()]
    # Lines 1-500 were gone from the platform's memory before we came: nobody can show them.
    assert numbers == list(range(1500 - KEPT + 1, 3001))
