"""stream-logs and hodei against the Hodei platform stand-in (tests/platform_standin): jobs run
on workers elsewhere, and the log service has every fault of the real platform's."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from hodei_stream.client import HodeiClient
from hodei_stream.exit_codes import ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from tests.conftest import wait_until
from tests.platform_standin.fixture import Gate, Platform

from .streaming import HODEI, STREAM_LOGS, UnixProxy, submit
from .test_platform_standin import FAST

FINAL = (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED, pb.JOB_STATUS_TIMEOUT)
ALARMS = ("⚠️", "cannot reach", "reconnecting", "Traceback")


def numbered(first: int, last: int) -> str:
    """A job's shell loop writing ``n=first`` … ``n=last``, one line each."""
    return f"for n in $(seq {first} {last}); do echo n=$n; done"


def numbers(lines: list[str]) -> list[int]:
    return [int(line.removeprefix("[OUT] n=")) for line in lines if line.startswith("[OUT] n=")]


class Following:
    """stream-logs running on a job: its stdout lines as they come, its end."""

    def __init__(self, server: str, job_id: str, *options: str, env: dict[str, str] | None = None) -> None:
        command = [*STREAM_LOGS, "--server", server, "-q", "--no-timestamps", *options, job_id]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
        )
        self.lines: list[str] = []
        self.notices: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.notices), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(pipe: IO[str] | None, into: list[str]) -> None:
        assert pipe is not None
        into.extend(line.rstrip("\n") for line in pipe)

    def wait_for(self, line: str, timeout: float = 30.0) -> None:
        try:
            wait_until(lambda: line in self.lines or self.process.poll() is not None, timeout, f"{line} shown")
        finally:
            if line not in self.lines:
                self.process.kill()  # not left behind by a failed test
        assert line in self.lines, self.finish()[1]

    def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        """The exit status and stderr, once stream-logs ended by itself."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"stream-logs did not end within {timeout:g} s: {self.notices}")
        for reader in self.readers:
            reader.join(10)
        return status, "\n".join(self.notices)


def final(platform: Platform, job_id: str) -> pb.GetJobResponse:
    with HodeiClient(platform.server) as client:
        return wait_until(lambda: (job := client.get_job(job_id)).status in FINAL and job, 30, f"job {job_id} to end")


def held_lines(platform: Platform, job_id: str) -> list[str]:
    with HodeiClient(platform.server) as client:
        return [entry.line for entry in client.get_logs(job_id, limit=1000).entries]


def gates(folder: Path, *names: str) -> list[Gate]:
    made = []
    for name in names:
        (folder / name).mkdir()
        made.append(Gate(folder / name))
    return made


def test_3000_live_lines_in_order_three_runs_in_a_row(start_platform: Callable[..., Platform], tmp_path: Path) -> None:
    # Followed from the job's start: the job says it is there, waits until stream-logs showed
    # that, then writes 3,000 lines in bursts the worker sends in batches of 100.
    platform = start_platform(**FAST)
    for run in range(3):
        (gate,) = gates(tmp_path, f"run{run}")
        job_id = submit(platform.server, f"echo ready; {gate.wait}; {numbered(1, 3000)}")
        following = Following(platform.url, job_id)
        following.wait_for("[OUT] ready")
        gate.open()
        status, stderr = following.finish()
        assert status == ExitStatus.OK, stderr
        assert following.lines == ["[OUT] ready"] + [f"[OUT] n={n}" for n in range(1, 3001)], f"run {run}"
        assert not any(alarm in stderr for alarm in ALARMS), stderr


def test_attached_late_to_a_job_with_more_than_100_lines_buffered(
    start_platform: Callable[..., Platform], tmp_path: Path
) -> None:
    # 1,500 lines before anyone subscribes: the platform keeps the last 1,000 and hangs a
    # subscription without headers; stream-logs shows what it holds, then every later line,
    # and ends when the job does.
    platform = start_platform(**FAST)
    more, done = gates(tmp_path, "more", "done")
    job_id = submit(platform.server, f"{numbered(1, 1500)}; {more.wait}; {numbered(1501, 1800)}; {done.wait}")
    wait_until(lambda: held_lines(platform, job_id)[-1:] == ["n=1500"], 30, "the job's first 1,500 lines")
    following = Following(platform.url, job_id)
    following.wait_for("[OUT] n=1500")
    more.open()
    following.wait_for("[OUT] n=1800")
    done.open()
    status, stderr = following.finish()
    assert status == ExitStatus.OK, stderr
    assert numbers(following.lines) == list(range(501, 1801))
    assert len(following.lines) == 1300
    assert not any(alarm in stderr for alarm in ALARMS), stderr


@pytest.mark.parametrize(
    ("script", "status", "ending"),
    [
        ("echo done", ExitStatus.OK, "job COMPLETED, exit code 0"),
        ("echo failing; exit 3", ExitStatus.JOB_FAILED, "job FAILED, exit code unknown, Worker reported failure"),
    ],
    ids=["completed", "failed"],
)
def test_attached_after_the_job_ended(
    start_platform: Callable[..., Platform], script: str, status: int, ending: str
) -> None:
    # The platform dropped the job's lines when it ended, and a subscription for it now
    # never sends anything: one line that says so, the end line, the job's exit status.
    platform = start_platform(**FAST)
    job_id = submit(platform.server, script)
    final(platform, job_id)
    result = subprocess.run(
        [*STREAM_LOGS, "--server", platform.url, "--no-timestamps", job_id], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == status, result.stderr
    assert result.stdout == ""
    notices = result.stderr.splitlines()[2:]  # after the banner
    assert (
        notices[0] == f"📭 the server holds no lines of job {job_id}: a Hodei platform drops a job's lines when it ends"
    )
    assert notices[1].endswith(f"stream ended: {ending}")
    assert len(notices) == 2
    people = subprocess.run([*HODEI, "--server", platform.url, "status", job_id], capture_output=True, text=True)
    if status == ExitStatus.JOB_FAILED:
        assert "    exit_code: unknown" in people.stdout.splitlines()


def test_a_job_silent_longer_than_the_keepalive_raises_no_alarm(
    start_platform: Callable[..., Platform], tmp_path: Path
) -> None:
    # Pings every 0.3 s of silence; the stand-in, as grpc-core, answers a third PING within
    # 5 s without data with GOAWAY too_many_pings and closes: not an outage, twice (the
    # second connection pings half as often, still too often).
    platform = start_platform(listen=f"unix:{tmp_path / 'platform.sock'}", ping_interval=5, **FAST)
    proxy = UnixProxy(tmp_path / "proxy.sock", str(tmp_path / "platform.sock"), watch_for=b"too_many_pings")
    proxy.start()
    after, done = gates(tmp_path, "after", "done")
    job_id = submit(platform.server, f"echo before; {after.wait}; echo after; {done.wait}")
    env = {**os.environ, "HODEI_KEEPALIVE_S": "0.3"}
    following = Following(f"unix:{proxy.listen_path}", job_id, env=env)
    following.wait_for("[OUT] before")
    wait_until(lambda: proxy.sightings >= 2, 30, "the server's GOAWAYs too_many_pings")
    after.open()
    following.wait_for("[OUT] after")
    done.open()  # the job ends once its last line was shown: the platform drops its lines then
    status, stderr = following.finish()
    proxy.stop()
    assert status == ExitStatus.OK, stderr
    assert following.lines == ["[OUT] before", "[OUT] after"]
    assert not any(alarm in stderr for alarm in ALARMS), stderr


def test_hodei_list_where_list_jobs_fails(platform: Platform) -> None:
    submit(platform.server, "echo listed")  # with a job to list, the platform resets ListJobs
    result = subprocess.run([*HODEI, "--server", platform.url, "list"], capture_output=True, text=True, timeout=30)
    assert result.returncode == ExitStatus.UNREACHABLE
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"hodei: the server at {platform.url} could not list jobs (ListJobs: ")
    assert "RST_STREAM with error code 8" in line  # grpcio's words, which vary by version
    assert line.endswith("); hodei status JOB_ID still works")


def test_tail_though_the_platform_sends_its_whole_buffer(
    start_platform: Callable[..., Platform], tmp_path: Path
) -> None:
    # Ten lines buffered (a subscription then gets headers), sent again after the history
    # whatever was asked: only the last 3 of them, then every later line.
    platform = start_platform(**FAST)
    more, done = gates(tmp_path, "more", "done")
    job_id = submit(platform.server, f"{numbered(1, 10)}; {more.wait}; {numbered(11, 15)}; {done.wait}")
    wait_until(lambda: held_lines(platform, job_id)[-1:] == ["n=10"], 30, "the job's first 10 lines")
    following = Following(platform.url, job_id, "--tail", "3")
    following.wait_for("[OUT] n=10")
    more.open()
    following.wait_for("[OUT] n=15")
    done.open()
    status, stderr = following.finish()
    assert status == ExitStatus.OK, stderr
    assert numbers(following.lines) == [8, 9, 10, 11, 12, 13, 14, 15]


def test_a_buffer_of_one_line_sent_again_is_shown_once(start_platform: Callable[..., Platform], tmp_path: Path) -> None:
    # One line buffered when stream-logs subscribes: the history ends with the line the
    # re-sent buffer starts with, under the same number.  It is shown once.
    platform = start_platform(**FAST)
    (done,) = gates(tmp_path, "done")
    job_id = submit(platform.server, f"echo ready; {done.wait}; {numbered(1, 3)}")
    wait_until(lambda: held_lines(platform, job_id) == ["ready"], 30, "the job's first line")
    following = Following(platform.url, job_id)
    following.wait_for("[OUT] ready")
    done.open()
    status, stderr = following.finish()
    assert status == ExitStatus.OK, stderr
    assert following.lines == ["[OUT] ready", "[OUT] n=1", "[OUT] n=2", "[OUT] n=3"]


def test_no_history_though_the_platform_sends_its_whole_buffer(
    start_platform: Callable[..., Platform], tmp_path: Path
) -> None:
    # Ten lines buffered, then a tick every 0.1 s until the test says stop: none of the ten.
    platform = start_platform(**FAST)
    stop = tmp_path / "stop"
    ticks = f"for i in $(seq 600); do echo tick; sleep 0.1; [ -e {stop} ] && break; done"
    job_id = submit(platform.server, f"{numbered(1, 10)}; {ticks}")
    wait_until(lambda: "n=10" in held_lines(platform, job_id), 30, "the job's first 10 lines")
    following = Following(platform.url, job_id, "--no-history")
    following.wait_for("[OUT] tick")
    stop.touch()
    status, stderr = following.finish()
    assert status == ExitStatus.OK, stderr
    assert set(following.lines) == {"[OUT] tick"}


def test_a_subscription_gone_silent_gives_way_to_get_logs(
    start_platform: Callable[..., Platform], tmp_path: Path
) -> None:
    # The subscription's path carries nothing any more while the job writes: the watchdog
    # sees lines on the server that the stream did not bring, and the follow goes on by
    # GetLogs: every line once, in order, without alarm.
    platform = start_platform(listen=f"unix:{tmp_path / 'platform.sock'}", **FAST)
    proxy = UnixProxy(tmp_path / "proxy.sock", str(tmp_path / "platform.sock"))
    proxy.start()
    more, done = gates(tmp_path, "more", "done")
    job_id = submit(platform.server, f"echo first; {more.wait}; {numbered(1, 50)}; {done.wait}")
    following = Following(f"unix:{proxy.listen_path}", job_id)
    following.wait_for("[OUT] first")
    proxy.freeze()
    more.open()
    following.wait_for("[OUT] n=50")
    done.open()
    status, stderr = following.finish()
    proxy.stop()
    assert status == ExitStatus.OK, stderr
    assert following.lines == ["[OUT] first"] + [f"[OUT] n={n}" for n in range(1, 51)]
    assert not any(alarm in stderr for alarm in ALARMS), stderr


def test_a_dropped_connection_resumes_without_repeats(start_platform: Callable[..., Platform], tmp_path: Path) -> None:
    # The connection is cut after 50 lines, and the job writes 20 more while stream-logs is
    # away: on its return the platform sends its buffer again, and GetLogs overlaps what was
    # shown; every line is shown once, in order.
    platform = start_platform(listen=f"unix:{tmp_path / 'platform.sock'}", **FAST)
    proxy = UnixProxy(tmp_path / "proxy.sock", str(tmp_path / "platform.sock"))
    proxy.start()
    away, more, done = gates(tmp_path, "away", "more", "done")
    script = f"{numbered(1, 50)}; {away.wait}; {numbered(51, 70)}; {more.wait}; {numbered(71, 90)}; {done.wait}"
    job_id = submit(platform.server, script)
    following = Following(f"unix:{proxy.listen_path}", job_id, "--reconnect-timeout", "30")
    following.wait_for("[OUT] n=50")
    proxy.stop()
    away.open()
    wait_until(lambda: held_lines(platform, job_id)[-1:] == ["n=70"], 30, "the lines written while away")
    wait_until(lambda: any("reconnecting" in notice for notice in following.notices), 30, "a reconnect")
    proxy.start()
    following.wait_for("[OUT] n=70")
    more.open()
    following.wait_for("[OUT] n=90")
    done.open()
    status, stderr = following.finish()
    proxy.stop()
    assert status == ExitStatus.OK, stderr
    assert following.lines == [f"[OUT] n={n}" for n in range(1, 91)]
