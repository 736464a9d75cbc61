"""stream-logs over many jobs, end to end: several jobs in time order, jobs chosen by what they
are (--all, --name, --tag) joining while it runs, --since/--until and --prefix, against a real
embedded server (and the platform stand-in, whose ListJobs fails), stream-logs a subprocess."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from tests.conftest import wait_until
from tests.platform_standin.fixture import Platform

from .streaming import STREAM_LOGS, submit

# Lines 0.3 s apart; the second job starts its lines 0.15 s after its start, so that the two
# interleave whatever the order the jobs start in (within 0.15 s of each other).
TICKS = "for i in 0 1 2 3 4; do echo {tag}$i; sleep 0.3; done"


def stream_logs(server: Server, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STREAM_LOGS, "--server", server.target, *args], capture_output=True, text=True, timeout=timeout
    )


def json_lines(stdout: str) -> list[dict[str, str]]:
    return [json.loads(text) for text in stdout.splitlines()]


def wait_final(server: Server, *job_ids: str) -> None:
    with HodeiClient(server) as client:
        for job_id in job_ids:
            client.wait_final(job_id)


def captured_ns(server: Server, job_id: str) -> list[int]:
    """The capture time of each of the job's lines, in order, as the server holds them."""
    with HodeiClient(server) as client:
        return [entry.timestamp.ToNanoseconds() for entry in client.all_logs(job_id)]


def iso(epoch_ns: int) -> str:
    return datetime.fromtimestamp(epoch_ns / 1e9, tz=UTC).isoformat()


def assert_in_time_order(lines: list[dict[str, str]], job_ids: Sequence[str]) -> None:
    stamps = [line["timestamp"] for line in lines]
    assert stamps == sorted(stamps), stamps  # RFC 3339 in UTC with ns: sorts as time does
    for job_id in job_ids:  # each job's own lines, once and in order
        assert [line["line"][1:] for line in lines if line["job_id"] == job_id] == [str(i) for i in range(5)]
    owners = [line["job_id"] for line in lines]
    switches = sum(a != b for a, b in itertools.pairwise(owners))
    assert switches >= 4, owners  # interleaved, not one job's lines after the other's


def two_interleaved_jobs(server: Server) -> tuple[str, str]:
    first = submit(server, TICKS.format(tag="a"), name="first")
    second = submit(server, "sleep 0.15; " + TICKS.format(tag="b"), name="second")
    return first, second


def test_history_of_several_jobs_is_merged_by_time(server: Server) -> None:
    first, second = two_interleaved_jobs(server)
    wait_final(server, first, second)
    # The second job named first: replayed whole one after the other, its lines would lead.
    result = stream_logs(server, "--no-follow", "--json", second, first)
    assert result.returncode == 0, result.stderr
    assert_in_time_order(json_lines(result.stdout), [first, second])


def test_following_several_jobs_keeps_time_order(server: Server) -> None:
    first, second = two_interleaved_jobs(server)
    with HodeiClient(server) as client:  # some history for each to merge, the rest live
        wait_until(lambda: len(list(client.all_logs(second))) >= 2, what="two lines of the second job")
    result = stream_logs(server, "--json", second, first)
    assert result.returncode == 0, result.stderr
    assert_in_time_order(json_lines(result.stdout), [first, second])


def spaced_job(server: Server) -> tuple[str, list[int]]:
    """A finished job of four lines 0.4 s apart, and their capture times."""
    job_id = submit(server, "for i in 0 1 2 3; do echo line $i; sleep 0.4; done")
    wait_final(server, job_id)
    return job_id, captured_ns(server, job_id)


def test_since_and_until_between_two_lines(server: Server) -> None:
    job_id, stamps = spaced_job(server)
    since = iso((stamps[0] + stamps[1]) // 2)
    until = iso((stamps[2] + stamps[3]) // 2)
    for follow in ([], ["--no-follow"]):
        result = stream_logs(server, "--no-timestamps", "--since", since, "--until", until, *follow, job_id)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "[OUT] line 1\n[OUT] line 2\n"
    # --tail counts the lines the window keeps: the last one of them.
    result = stream_logs(server, "--no-timestamps", "--until", until, "--tail", "1", job_id)
    assert (result.returncode, result.stdout) == (0, "[OUT] line 2\n"), result.stderr
    result = stream_logs(server, "--no-timestamps", "--since", "1h", job_id)
    assert result.stdout.count("[OUT] line") == 4


def test_until_to_come_ends_the_follow_then(server: Server) -> None:
    job_id = submit(server, "echo early; sleep 30; echo late")
    started = time.monotonic()
    result = stream_logs(server, "--no-timestamps", "--until", "+1.5s", job_id)
    took = time.monotonic() - started
    assert result.returncode == 5, result.stderr
    assert result.stdout == "[OUT] early\n"
    assert "--until reached (the job goes on)" in result.stderr
    assert 1.0 < took < 10, took


def test_prefix_names_with_short_ids_where_names_repeat(server: Server) -> None:
    twins = [submit(server, f"echo twin {i}", name="twin") for i in range(2)]
    single = submit(server, "echo single", name="single")
    wait_final(server, *twins, single)
    result = stream_logs(server, "--no-follow", "--no-timestamps", "--prefix", "name", *twins, single)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(
        [f"twin/{twins[0][:8]} [OUT] twin 0", f"twin/{twins[1][:8]} [OUT] twin 1", "single [OUT] single"]
    )
    assert f"twin/{twins[0][:8]} ✅ history shown: job COMPLETED" in result.stderr
    bare = stream_logs(server, "--no-follow", "--no-timestamps", "--prefix", "none", *twins)
    assert sorted(bare.stdout.splitlines()) == ["[OUT] twin 0", "[OUT] twin 1"]


class Watcher:
    """stream-logs running in the background, each stdout line kept with its arrival time."""

    def __init__(self, server: Server, *args: str) -> None:
        self.process = subprocess.Popen(
            [*STREAM_LOGS, "--server", server.target, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[tuple[float, dict[str, str]]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            self.lines.append((time.time(), json.loads(text)))

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=20)
        self.reader.join(timeout=10)
        return self.process.returncode, stderr


def test_name_and_tag_selectors_take_jobs_queued_while_watching(server: Server, tmp_path: Path) -> None:
    with HodeiClient(server) as client:
        before = client.queue_job("etl-before", "/bin/bash", ["-c", "echo done before"])
        client.wait_final(before)  # finished before the watch: not shown
    by_name = Watcher(server, "--json", "--name", "^etl-")
    by_tag = Watcher(server, "--json", "--tag", "cicd", "--tag", "stage")
    wait_until(lambda: by_name.process.poll() is None and by_tag.process.poll() is None, what="the watchers")
    queued: dict[str, tuple[str, list[str]]] = {}
    with HodeiClient(server) as client:
        # A job both watchers take, seen by both before the others are queued: each has
        # listed the jobs since it started, so the ones below are queued while they watch.
        # It runs until both saw it (a job that ended before a watcher's first round is
        # one from before the watch, not shown).
        seen = tmp_path / "marker-seen"
        wait_seen = f"for i in $(seq 1 1500); do [ -e {seen} ] && break; sleep 0.02; done"
        marker_lines = "echo etl-marker 0; echo etl-marker 1; echo etl-marker 2"
        marker = client.queue_job(
            "etl-marker", "/bin/bash", ["-c", f"{marker_lines}; {wait_seen}"], tags=["cicd", "stage"]
        )
        queued[marker] = ("etl-marker", ["cicd", "stage"])
        for watcher in (by_name, by_tag):
            wait_until(
                lambda w=watcher: sum(line["job_id"] == marker for _, line in w.lines) == 3,
                timeout=15,
                what="the marker job's lines",
            )
        seen.touch()
        for i in range(20):
            name = f"etl-{i}" if i % 2 else f"web-{i}"
            tags = ["cicd", "stage"] if i % 3 == 0 else ["cicd"]
            script = f"for k in 0 1 2; do echo {name} $k; sleep 0.1; done"
            queued[client.queue_job(name, "/bin/bash", ["-c", script], tags=tags)] = (name, tags)
            time.sleep(0.5)
        for job_id in queued:
            client.wait_final(job_id)
    wanted_by_name = {job_id for job_id, (name, _) in queued.items() if name.startswith("etl-")}
    wanted_by_tag = {job_id for job_id, (_, tags) in queued.items() if "stage" in tags}
    for watcher, wanted in ((by_name, wanted_by_name), (by_tag, wanted_by_tag)):
        lines_due = 3 * len(wanted)
        wait_until(lambda w=watcher, n=lines_due: len(w.lines) >= n, timeout=15, what="every matching line")
        status, stderr = watcher.stop()
        assert status == 130, stderr
        assert {line["job_id"] for _, line in watcher.lines} == wanted
        for job_id in wanted:
            name = queued[job_id][0]
            mine = [(at, line) for at, line in watcher.lines if line["job_id"] == job_id]
            assert [line["line"] for _, line in mine] == [f"{name} {k}" for k in range(3)]
            first_at, first = mine[0]
            written = datetime.fromisoformat(first["timestamp"].replace("Z", "")[:26] + "+00:00").timestamp()
            assert first_at - written < 1.0, (name, first_at - written)
            assert f"job {job_id} joined" in stderr
        assert before not in stderr


def test_no_history_shows_jobs_queued_while_watching_from_their_first_line(server: Server, tmp_path: Path) -> None:
    # A job running before the watch: only what it writes from then on.  A job queued while
    # watching: all of it, though it wrote its three lines before the watch found it.
    go = tmp_path / "go"
    ticks = f"for i in $(seq 1 1500); do [ -e {go} ] && break; echo old tick; sleep 0.02; done"
    old = submit(server, f"echo old 0; {ticks}; echo old end", name="old")
    wait_until(lambda: captured_ns(server, old), what="the old job's first line")
    watcher = Watcher(server, "--json", "--all", "--no-history")
    try:
        wait_until(lambda: any(line["job_id"] == old for _, line in watcher.lines), 15, "the old job followed")
        new = submit(server, "echo new 0; echo new 1; echo new 2", name="new")
        wait_final(server, new)
        wait_until(lambda: sum(line["job_id"] == new for _, line in watcher.lines) >= 3, 15, "the new job's lines")
        go.touch()
        wait_until(lambda: any(line["line"] == "old end" for _, line in watcher.lines), 15, "the old job's end")
    finally:
        go.touch()
        status, stderr = watcher.stop()
    assert status == 130, stderr
    assert [line["line"] for _, line in watcher.lines if line["job_id"] == new] == ["new 0", "new 1", "new 2"]
    shown_of_old = [line["line"] for _, line in watcher.lines if line["job_id"] == old]
    assert "old 0" not in shown_of_old and shown_of_old[-1] == "old end"


def test_until_done_ends_when_no_matching_job_is_left(server: Server) -> None:
    jobs = [submit(server, f"echo one {i}; sleep 0.5; echo two {i}", name=f"batch-{i}") for i in range(2)]
    other = submit(server, "sleep 20", name="other")
    result = stream_logs(server, "--no-timestamps", "--name", "^batch-", "--until-done", timeout=20)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(
        f"batch-{i} [OUT] {word} {i}" for i in range(2) for word in ("one", "two")
    )
    assert other not in result.stderr
    assert all(f"job {job_id} joined" in result.stderr for job_id in jobs)
    # Nothing matching: --until-done has nothing to wait for.
    for ending in ("--until-done", "--no-follow"):
        nothing = stream_logs(server, "--name", "^nothing-like-this$", ending, timeout=20)
        assert (nothing.returncode, nothing.stdout) == (0, ""), nothing.stderr
        assert nothing.stderr == "stream-logs: no job running or queued matches\n"


def test_selectors_where_list_jobs_fails_say_so_in_one_line(start_platform: Callable[..., Platform]) -> None:
    platform = start_platform()
    # No job yet: the platform lists nothing without failing; the first job queued makes it fail.
    watching = subprocess.Popen(
        [*STREAM_LOGS, "--server", platform.server.target, "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: platform.listed_nothing() > 0, timeout=15, what="a round of ListJobs that lists nothing")
    with HodeiClient(platform.server) as client:
        job_id = client.queue_job("listed", "/bin/bash", ["-c", "echo hi; sleep 5"])
    stdout, stderr = watching.communicate(timeout=15)
    assert (watching.returncode, stdout) == (4, ""), stderr
    assert "could not list jobs" in stderr.splitlines()[-1]
    # Jobs there from the start: one line, exit 4, before anything else.
    result = stream_logs(platform.server, "--all")
    assert result.returncode == 4, result.stderr
    assert result.stdout == ""
    (message,) = result.stderr.splitlines()
    assert "could not list jobs" in message
    assert "jobs named by id still work" in message
    by_id = stream_logs(platform.server, "--no-timestamps", "--until", "+3s", job_id)
    assert "[OUT] hi\n" in by_id.stdout, by_id.stderr
