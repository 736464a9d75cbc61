"""stream-logs against servers that fail (grpcio, an independent gRPC stack): the back-off
grows, --reconnect-timeout holds, and a failure that would not pass is not retried."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ExitStatus
from tests.conftest import wait_until

from .faulty_grpcio import JOB_ID, LINES
from .streaming import STREAM_LOGS

HERE = Path(__file__).parent
FaultyServer = Callable[[str], Path]


@pytest.fixture
def faulty_server(home: Path) -> Iterator[FaultyServer]:
    """Start ``faulty_grpcio.py MODE`` on a socket in ``home``; its socket path."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(mode: str) -> Path:
        socket = home / f"{mode}.sock"
        processes.append(subprocess.Popen([sys.executable, str(HERE / "faulty_grpcio.py"), mode, f"unix:{socket}"]))
        wait_until(
            lambda: Path(f"{socket}.ready").exists() or processes[-1].poll() is not None,
            timeout=30,
            what="the grpcio server",
        )
        assert processes[-1].poll() is None
        return socket

    yield start
    for process in processes:
        process.kill()
        process.wait()


def calls(socket: Path, method: str) -> int:
    log = Path(f"{socket}.calls")
    return sum(1 for line in log.read_text().splitlines() if line.startswith(method)) if log.exists() else 0


def test_a_server_that_answers_then_fails_meets_a_growing_back_off_and_the_timeout(faulty_server: FaultyServer) -> None:
    socket = faulty_server("answers-then-fails")
    started = time.monotonic()
    result = subprocess.run(
        [*STREAM_LOGS, "--server", f"unix:{socket}", "--reconnect-timeout", "3", "--no-timestamps", JOB_ID],
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    attempts = calls(socket, "SubscribeLogs")
    print(f"answers-then-fails: exit {result.returncode} after {took:.1f}s and {attempts} SubscribeLogs attempts")
    assert result.returncode == ExitStatus.UNREACHABLE, result.stderr
    assert took < 10
    assert 3 <= attempts <= 8
    # Every line once, though every attempt sent them all again.
    assert result.stdout.splitlines() == [f"[OUT] line {n}" for n in range(1, LINES + 1)]
    notices = [line for line in result.stderr.splitlines() if "reconnecting in" in line]
    assert len(notices) == attempts - 1  # one line per retry, no flood
    delays = [float(line.rsplit("reconnecting in ", 1)[1].removesuffix("s")) for line in notices]
    assert delays[2] > delays[0]  # it grows
    assert "the log store failed" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("options", [[], ["--no-follow"]], ids=["SubscribeLogs", "GetLogs"])
def test_unimplemented_is_not_retried(faulty_server: FaultyServer, options: list[str]) -> None:
    socket = faulty_server("unimplemented")
    started = time.monotonic()
    result = subprocess.run(
        [*STREAM_LOGS, "--server", f"unix:{socket}", *options, JOB_ID], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == ExitStatus.UNREACHABLE, result.stderr
    assert time.monotonic() - started < 10
    assert calls(socket, "SubscribeLogs") + calls(socket, "GetLogs") == 1
    assert "does not speak the Hodei API" in result.stderr.splitlines()[-1]
    assert "reconnecting" not in result.stderr


def test_pagers_stop_on_a_server_that_repeats_its_page(faulty_server: FaultyServer) -> None:
    # GetLogs answers the same page, has_more set, whatever it is asked: each pager shows
    # the lines once and stops, asking for two pages at most (stream-logs --no-follow asks
    # one line first, to learn whether the server pages at all).
    socket = faulty_server("repeats-pages")
    with HodeiClient(Server(f"unix:{socket}", embedded=False)) as client:
        assert [entry.line for entry in client.all_logs(JOB_ID)] == [f"line {n}" for n in range(1, LINES + 1)]
    assert calls(socket, "GetLogs") == 2
    result = subprocess.run(
        [*STREAM_LOGS, "--server", f"unix:{socket}", "--no-follow", "-q", "--no-timestamps", JOB_ID],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == ExitStatus.STILL_RUNNING, result.stderr
    assert result.stdout.splitlines() == [f"[OUT] line {n}" for n in range(1, LINES + 1)]
    assert calls(socket, "GetLogs") == 2 + 3
