"""stream-logs --no-follow and --tail N: every line of the history asked for once, in order,
and nothing after it, against our embedded server (finished and running jobs, as the
embedded server and as any other server, through a proxy) and the platform stand-in (whose
GetLogs answers the last ``limit`` lines and whose subscription hangs past 100 buffered)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ExitStatus
from hodei_stream.stream.subscribe import GET_LOGS_PAGE_LINES
from tests.conftest import wait_until
from tests.platform_standin.fixture import Gate, Platform

from .streaming import STREAM_LOGS, UnixProxy, submit
from .test_platform_standin import FAST

# More than a page of GetLogs (ours: 1,000 asked, 5,000 at most) and of a SubscribeLogs write.
HISTORY_LINES = 12_345
TAILS = [1, 10, HISTORY_LINES - 1, HISTORY_LINES, HISTORY_LINES + 1000]


def numbered(first: int, last: int) -> str:
    """A job's shell writing ``n=first`` … ``n=last``, one line each, as fast as seq does."""
    return f"seq {first} {last} | sed 's/^/n=/'"


def shown(target: str, job_id: str, *options: str) -> tuple[int, list[int], str]:
    """stream-logs' exit status, the numbers of the lines it showed (every one must be an
    ``n=`` line) and its stderr."""
    result = subprocess.run(
        [*STREAM_LOGS, "--server", target, "-q", "--no-timestamps", *options, job_id],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    lines = result.stdout.splitlines()
    assert all(line.startswith("[OUT] n=") for line in lines), lines[:5]
    return result.returncode, [int(line.removeprefix("[OUT] n=")) for line in lines], result.stderr


def stored_lines(server: Server, job_id: str) -> int:
    """How many lines the server holds of the job (paged through GetLogs)."""
    count = 0
    with HodeiClient(server) as client:
        while True:
            page = client.get_logs(job_id, since_sequence=count, limit=GET_LOGS_PAGE_LINES)
            count += len(page.entries)
            if not page.has_more:
                return count


@pytest.fixture(params=["embedded", "proxied"])
def target(request: pytest.FixtureRequest, server: Server, home: Path) -> Iterator[str]:
    """Our server as stream-logs' own embedded server, and as any other server would be (a
    socket it does not know: it must find out what the server promises)."""
    if request.param == "embedded":
        yield server.target
        return
    proxy = UnixProxy(home / "proxy.sock", server.target.removeprefix("unix:"))
    proxy.start()
    yield f"unix:{proxy.listen_path}"
    proxy.stop()


@pytest.fixture
def finished_job(server: Server) -> str:
    job_id = submit(server, numbered(1, HISTORY_LINES))
    with HodeiClient(server) as client:
        client.wait_final(job_id)
    return job_id


def test_no_follow_shows_a_finished_job_s_whole_history_once_in_order(target: str, finished_job: str) -> None:
    status, numbers, stderr = shown(target, finished_job, "--no-follow")
    assert status == ExitStatus.OK, stderr
    assert numbers == list(range(1, HISTORY_LINES + 1))


@pytest.mark.parametrize("tail", TAILS)
def test_no_follow_tail_shows_the_last_lines(target: str, finished_job: str, tail: int) -> None:
    status, numbers, stderr = shown(target, finished_job, "--no-follow", "--tail", str(tail))
    assert status == ExitStatus.OK, stderr
    assert numbers == list(range(max(1, HISTORY_LINES - tail + 1), HISTORY_LINES + 1))


@pytest.mark.parametrize("tail", [0, 1, 10, HISTORY_LINES + 1000])
def test_tail_following_a_finished_job(target: str, finished_job: str, tail: int) -> None:
    status, numbers, stderr = shown(target, finished_job, "--tail", str(tail))
    assert status == ExitStatus.OK, stderr
    assert numbers == list(range(max(1, HISTORY_LINES - tail + 1), HISTORY_LINES + 1)) if tail else numbers == []


def test_no_follow_and_tail_0_is_a_usage_error(target: str, finished_job: str) -> None:
    status, numbers, stderr = shown(target, finished_job, "--no-follow", "--tail", "0")
    assert status == ExitStatus.USAGE and numbers == []
    assert "would show nothing" in stderr


@pytest.fixture
def running_job(server: Server, tmp_path: Path) -> Iterator[str]:
    """A job that wrote HISTORY_LINES lines and waits for the test to let it end."""
    (tmp_path / "gate").mkdir()
    gate = Gate(tmp_path / "gate")
    job_id = submit(
        server, f"{numbered(1, HISTORY_LINES)}; {gate.wait}; {numbered(HISTORY_LINES + 1, HISTORY_LINES + 5)}"
    )
    wait_until(lambda: stored_lines(server, job_id) == HISTORY_LINES, 30, "the job's first lines stored")
    yield job_id
    gate.open()
    with HodeiClient(server) as client:
        client.wait_final(job_id)


@pytest.mark.parametrize("tail", [None, 1, 10, HISTORY_LINES + 1000])
def test_no_follow_on_a_running_job_shows_its_history_and_ends(target: str, running_job: str, tail: int | None) -> None:
    options = ["--no-follow"] if tail is None else ["--no-follow", "--tail", str(tail)]
    status, numbers, stderr = shown(target, running_job, *options)
    assert status == ExitStatus.STILL_RUNNING, stderr
    first = 1 if tail is None else max(1, HISTORY_LINES - tail + 1)
    assert numbers == list(range(first, HISTORY_LINES + 1))


def test_no_follow_while_the_job_writes_ends_with_a_whole_prefix(server: Server) -> None:
    # Lines keep coming while stream-logs reads: it shows 1..k without a gap or a repeat,
    # k at least what the server held when it began, and ends without waiting for the rest.
    # The job writes until it is cancelled, however slow the host: one that ended while
    # stream-logs read would rightly end it with the job's status instead of 5.  Paging
    # through what it holds would chase the job; one GetLogs tells that 2,000 are there.
    job_id = submit(server, "i=0; while :; do i=$((i+1)); echo n=$i; done")
    held = 2000
    try:
        with HodeiClient(server) as client:
            wait_until(lambda: client.get_logs(job_id, since_sequence=held - 1, limit=1).entries, 30, "2,000 stored")
        status, numbers, stderr = shown(server.target, job_id, "--no-follow")
        assert status == ExitStatus.STILL_RUNNING, stderr
        assert numbers == list(range(1, len(numbers) + 1))
        assert len(numbers) >= held
    finally:
        with HodeiClient(server) as client:
            client.cancel_job(job_id)


def test_only_a_long_history_imports_the_generated_code(server: Server) -> None:
    # A history of fewer than ~60,000 lines is read by stream-logs' own decoder, with no
    # import of protobuf's (~40 ms); a longer one goes on by protobuf's parser.
    counts = (10, 20_000, 100_000)  # entries of ~60 bytes: the last passes BULK_AFTER_BYTES
    jobs = [submit(server, numbered(1, count)) for count in counts]
    with HodeiClient(server) as client:
        for job_id in jobs:
            client.wait_final(job_id)
    for job_id, count, imported in zip(jobs, counts, (False, False, True), strict=True):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", *STREAM_LOGS[1:], "--server", server.target, "-q", job_id],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.count("\n") == count
        assert ("hodei_stream.proto.hodei_pb2" in result.stderr) == imported


PLATFORM_LINES = 500  # more than the 100 that make a subscription hang, fewer than the 1,000 it keeps


@pytest.fixture
def platform_job(start_platform: Callable[..., Platform], tmp_path: Path) -> Iterator[tuple[Platform, str]]:
    platform = start_platform(**FAST)
    (tmp_path / "gate").mkdir()
    gate = Gate(tmp_path / "gate")
    job_id = submit(platform.server, f"{numbered(1, PLATFORM_LINES)}; {gate.wait}")

    def held() -> list[str]:
        with HodeiClient(platform.server) as client:
            return [entry.line for entry in client.get_logs(job_id, limit=1000).entries]

    wait_until(lambda: held()[-1:] == [f"n={PLATFORM_LINES}"], 30, "the job's lines on the platform")
    yield platform, job_id
    gate.open()


@pytest.mark.parametrize("tail", [None, 1, 10, PLATFORM_LINES + 100])
def test_no_follow_on_the_platform(platform_job: tuple[Platform, str], tail: int | None) -> None:
    platform, job_id = platform_job
    options = ["--no-follow"] if tail is None else ["--no-follow", "--tail", str(tail)]
    status, numbers, stderr = shown(platform.url, job_id, *options)
    assert status == ExitStatus.STILL_RUNNING, stderr
    first = 1 if tail is None else max(1, PLATFORM_LINES - tail + 1)
    assert numbers == list(range(first, PLATFORM_LINES + 1))
    assert "⚠️" not in stderr and "Traceback" not in stderr
