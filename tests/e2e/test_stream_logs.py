"""stream-logs end to end: a real embedded server, stream-logs as a subprocess, real pipes
and pseudo-terminals, real signals."""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.proto import hodei_pb2 as pb
from tests.conftest import wait_until

from .streaming import (
    HODEI,
    STREAM_LOGS,
    CancellingServer,
    UnixProxy,
    read_timed,
    strip_colours,
    submit,
    submit_python,
)

LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \[(OUT|ERR)\] (.*)$")
# 20 lines 100 ms apart from a python3 that never flushes: only a job whose stdout is not a
# buffered pipe gets them out one by one.
UNFLUSHED = "import time\nfor i in range(20):\n    print(f'tick {i}')\n    time.sleep(0.1)\n"


def stream_logs(server: Server, *args: str, timeout: float = 60.0, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STREAM_LOGS, "--server", server.target, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def wait_final(server: Server, job_id: str) -> pb.GetJobResponse:
    with HodeiClient(server) as client:
        return client.wait_final(job_id)


@pytest.mark.parametrize("tty", [True, False], ids=["pty", "pipe"])
def test_hodei_run_shows_unflushed_lines_one_by_one(server: Server, tty: bool) -> None:
    result = read_timed([*HODEI, "--server", server.target, "run", "--", "python3", "-c", UNFLUSHED], tty=tty)
    assert result.status == 0
    ticks = [(at, strip_colours(text)) for at, text in result.lines if "tick" in text]
    assert [LINE.match(text).group(2) for _, text in ticks] == [f"tick {i}" for i in range(20)]
    gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(ticks))
    # Line by line, ~100 ms apart: not a burst at the end (which would make the gaps ~0).
    assert gaps[len(gaps) // 2] > 0.05, gaps
    assert ticks[-1][0] - ticks[0][0] > 1.5


def test_completed_job_output_format_and_exit_status(server: Server) -> None:
    job_id = submit(server, "echo hello; echo oops >&2; printf 'no newline'")
    result = stream_logs(server, job_id)
    assert result.returncode == 0, result.stderr
    body = [LINE.match(text).groups() for text in result.stdout.splitlines()]
    # Each stream keeps its order; between stdout and stderr, lines written within the same
    # instant may swap (two pipes, as with any log collector).
    assert [entry for entry in body if entry[0] == "OUT"] == [("OUT", "hello"), ("OUT", "no newline")]
    assert [entry for entry in body if entry[0] == "ERR"] == [("ERR", "oops")]
    assert result.stderr.startswith(f"📡 Streaming logs for job: {job_id}\n{'─' * 64}\n")
    assert "✅ stream ended: job COMPLETED, exit code 0" in result.stderr


def test_failed_job_exits_1_with_its_exit_code(server: Server) -> None:
    job_id = submit(server, "echo before; exit 3")
    result = stream_logs(server, job_id)
    assert result.returncode == 1
    assert "job FAILED, exit code 3" in result.stderr


@pytest.mark.parametrize(
    ("job_id", "status", "message"),
    [
        (str(uuid.uuid4()), 3, "no job"),
        ("not-a-uuid", 2, "is not a job id"),
        ("{550e8400-e29b-41d4-a716-446655440000}", 2, "is not a job id"),
        ("550e8400e29b41d4a716446655440000", 2, "is not a job id"),
        ("x" * 100_000, 2, "is not a job id"),
    ],
)
def test_bad_job_ids(server: Server, job_id: str, status: int, message: str) -> None:
    result = stream_logs(server, job_id)
    assert result.returncode == status
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_upper_case_job_id_is_the_same_job(server: Server) -> None:
    job_id = submit(server, "echo hi")
    wait_final(server, job_id)
    result = stream_logs(server, "--no-timestamps", job_id.upper())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[OUT] hi\n"
    assert f"Streaming logs for job: {job_id}\n" in result.stderr


def test_unknown_job_among_good_ones_is_reported_and_the_rest_followed(server: Server) -> None:
    good = submit(server, "echo from good; sleep 0.3; echo again")
    failed = submit(server, "echo from failed; exit 2")
    unknown = str(uuid.uuid4())
    alone = stream_logs(server, "--no-timestamps", good, unknown)
    assert alone.returncode == 3  # no such job is worse news than a completed one
    assert alone.stdout.splitlines() == [f"{good[:8]} [OUT] from good", f"{good[:8]} [OUT] again"]  # as asked: two
    assert [line for line in alone.stderr.splitlines() if unknown in line] == [
        f"stream-logs: no job {unknown} on {server}"
    ]
    assert f"{good[:8]} ✅ stream ended: job COMPLETED" in alone.stderr
    several = stream_logs(server, "--no-timestamps", unknown, good, failed)
    assert several.returncode == 3
    assert sorted(several.stdout.splitlines()) == sorted(
        [f"{good[:8]} [OUT] from good", f"{good[:8]} [OUT] again", f"{failed[:8]} [OUT] from failed"]
    )
    assert several.stderr.count("📡 Streaming logs for job") == 2
    only_unknown = stream_logs(server, unknown, str(uuid.uuid4()))
    assert only_unknown.returncode == 3 and len(only_unknown.stderr.splitlines()) == 2


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [("unix:/nonexistent/hodei.sock", 4, "cannot reach the Hodei server"), ("no-port-here", 2, "is not host:port")],
)
def test_unreachable_or_malformed_server(home: Path, url: str, status: int, message: str) -> None:
    result = subprocess.run(
        [*STREAM_LOGS, "--server", url, str(uuid.uuid4())], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == status
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_embedded_server_that_will_not_start_is_one_line(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # a state folder the server refuses: others could write in it
    result = subprocess.run(
        [*STREAM_LOGS, str(uuid.uuid4())],
        env={**os.environ, "HODEI_STREAM_HOME": str(shared)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 4
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "could not start the embedded server" in result.stderr and "writable by other users" in result.stderr


def test_reader_going_away_ends_quietly(server: Server) -> None:
    # Far more than a pipe holds (64 KiB), so stream-logs must meet the closed pipe.
    job_id = submit(server, "seq -f 'line %g' 1 50000")
    wait_final(server, job_id)
    shell = f"{' '.join(STREAM_LOGS)} --server {server.target} {job_id} | head -3; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 3
    assert result.stderr == f"📡 Streaming logs for job: {job_id}\n{'─' * 64}\n"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_watching_and_the_job_goes_on(server: Server, signum: int) -> None:
    job_id = submit(server, "for i in $(seq 1 600); do echo alive $i; sleep 0.1; done")
    process = subprocess.Popen(
        [*STREAM_LOGS, "--server", server.target, job_id], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert "alive 1" in process.stdout.readline()
    process.send_signal(signum)
    _, err = process.communicate(timeout=15)
    assert process.returncode == 130
    assert "the job goes on" in err and f"stream-logs {job_id}" in err
    assert "Traceback" not in err
    with HodeiClient(server) as client:
        assert client.get_job(job_id).status == pb.JOB_STATUS_RUNNING
        client.cancel_job(job_id)


def numbered_job(count: int, pause_every: int, pause_s: float) -> str:
    return (
        "import time\n"
        f"for i in range({count}):\n"
        "    print(f'n={i}')\n"
        f"    if i % {pause_every} == 0: time.sleep({pause_s})\n"
    )


def follow_through_outage(target: str, job_id: str, outage: Callable[[], None]) -> None:
    """Follow ``job_id`` (5,000 numbered lines) at ``target``; after 1,500 lines, ``outage()``
    cuts the way to the server for a while.  Every number must come once, in order, exit 0."""
    process = subprocess.Popen(
        [*STREAM_LOGS, "--server", target, "--reconnect-timeout", "30", job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    for text in process.stdout:
        seen.append(text)
        if len(seen) == 1500:
            outage()
    _, err = process.communicate(timeout=60)
    numbers = [int(LINE.match(text.rstrip("\n")).group(2).removeprefix("n=")) for text in seen]
    assert numbers == list(range(5000))
    assert process.returncode == 0, err
    assert "reconnecting" in err


def test_cut_connection_loses_nothing_and_repeats_nothing(server: Server, home: Path) -> None:
    proxy = UnixProxy(home / "proxy.sock", server.target.removeprefix("unix:"))
    proxy.start()

    def outage() -> None:
        proxy.stop()
        time.sleep(1.0)  # the outage itself: the way to the server stays cut for a second
        proxy.start()

    job_id = submit_python(server, numbered_job(5000, 50, 0.05))
    follow_through_outage(f"unix:{proxy.listen_path}", job_id, outage)


def test_server_killed_and_restarted_loses_nothing_and_repeats_nothing(home: Path, launch_server) -> None:
    first = launch_server(home)

    def outage() -> None:
        first.process.kill()  # SIGKILL: no clean shutdown; the job's supervisor spools on
        first.process.wait()
        time.sleep(1.0)  # the outage itself: the server stays away for a second
        launch_server(home)

    job_id = submit_python(first.server, numbered_job(5000, 50, 0.05))
    follow_through_outage(first.server.target, job_id, outage)


def test_job_that_ends_while_we_are_away_gets_its_last_lines_and_end_line(server: Server, home: Path) -> None:
    proxy = UnixProxy(home / "proxy.sock", server.target.removeprefix("unix:"))
    proxy.start()
    gate = home / "gate"
    job_id = submit(server, f"seq 1 100; until [ -e {gate} ]; do sleep 0.02; done; seq 101 200; exit 7")
    process = subprocess.Popen(
        [*STREAM_LOGS, "--server", f"unix:{proxy.listen_path}", "--no-timestamps", job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = [process.stdout.readline() for _ in range(100)]
    proxy.stop()
    gate.touch()
    wait_final(server, job_id)  # the job ends while stream-logs cannot reach the server
    proxy.start()
    rest, err = process.communicate(timeout=60)
    assert [text.removeprefix("[OUT] ").strip() for text in seen + rest.splitlines()] == [str(i) for i in range(1, 201)]
    assert process.returncode == 1
    assert "❌ stream ended: job FAILED, exit code 7" in err
    assert "reconnecting" in err


def test_each_outage_gets_the_whole_reconnect_timeout(server: Server, home: Path) -> None:
    proxy = UnixProxy(home / "proxy.sock", server.target.removeprefix("unix:"))
    proxy.start()
    job_id = submit_python(server, numbered_job(3000, 50, 0.05))  # ~3 s of output
    process = subprocess.Popen(
        [*STREAM_LOGS, "--server", f"unix:{proxy.listen_path}", "--reconnect-timeout", "1.5", job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = 0
    for _ in process.stdout:
        seen += 1
        if seen in (500, 2500):  # two outages of 1 s, more than 1.5 s apart
            proxy.stop()
            time.sleep(1.0)
            proxy.start()
    _, err = process.communicate(timeout=60)
    assert seen == 3000
    assert process.returncode == 0, err


@pytest.mark.parametrize("options", [["--no-reconnect"], ["--reconnect-timeout", "1"]])
def test_giving_up_on_a_lost_server(server: Server, home: Path, options: list[str]) -> None:
    proxy = UnixProxy(home / "proxy.sock", server.target.removeprefix("unix:"))
    proxy.start()
    job_id = submit(server, "echo first; sleep 60")
    process = subprocess.Popen(
        [*STREAM_LOGS, "--server", f"unix:{proxy.listen_path}", *options, job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "first" in process.stdout.readline()
    proxy.stop()
    _, err = process.communicate(timeout=30)
    assert process.returncode == 4
    assert "cannot reach the Hodei server" in err.splitlines()[-1]
    assert "Traceback" not in err
    with HodeiClient(server) as client:
        client.cancel_job(job_id)


def test_tail_no_history_and_no_follow(server: Server) -> None:
    job_id = submit(server, "for i in $(seq 1 50); do echo l$i; done")
    wait_final(server, job_id)
    tail = stream_logs(server, "--tail", "5", "--no-timestamps", job_id)
    assert tail.stdout.splitlines() == [f"[OUT] l{i}" for i in range(46, 51)]
    history = stream_logs(server, "--no-follow", "-q", "--no-timestamps", job_id)
    assert history.stdout.splitlines() == [f"[OUT] l{i}" for i in range(1, 51)]
    assert history.stderr == ""
    nothing_new = stream_logs(server, "--no-history", "-q", job_id)
    assert nothing_new.returncode == 0 and nothing_new.stdout == ""


def test_no_follow_on_a_running_job_returns_at_once(server: Server) -> None:
    job_id = submit(server, "echo first; sleep 30")
    with HodeiClient(server) as client:
        for _ in range(200):
            if client.get_logs(job_id).entries:
                break
            time.sleep(0.02)
        result = stream_logs(server, "--no-follow", "--no-timestamps", job_id, timeout=10)
        client.cancel_job(job_id)
    assert result.returncode == 5  # not 0, which says "completed"
    assert result.stdout == "[OUT] first\n"
    assert "the job goes on" in result.stderr


def test_filters(server: Server) -> None:
    # Pauses keep the order across stdout and stderr deterministic.
    job_id = submit(
        server,
        "echo 'INFO a'; sleep 0.05; echo 'ERROR b' >&2; sleep 0.05; echo 'WARN c'; sleep 0.05; echo 'DEBUG d' >&2",
    )
    wait_final(server, job_id)

    def shown(*options: str) -> list[str]:
        return [text.split("] ", 1)[1] for text in stream_logs(server, "-q", *options, job_id).stdout.splitlines()]

    assert shown("--grep", "ERROR|WARN") == ["ERROR b", "WARN c"]
    assert shown("--grep", "ERROR", "--grep", "DEBUG") == ["ERROR b", "DEBUG d"]
    assert shown("--grep", "ERROR|WARN", "--invert") == ["INFO a", "DEBUG d"]
    assert shown("--stdout-only") == ["INFO a", "WARN c"]
    assert shown("--stderr-only") == ["ERROR b", "DEBUG d"]
    bad = stream_logs(server, "--grep", "(", job_id)
    assert bad.returncode == 2 and "bad --grep pattern" in bad.stderr


def test_export_json_stderr_and_colours(server: Server, tmp_path: Path) -> None:
    job_id = submit(server, "echo 'ERROR first'; sleep 0.05; echo second >&2")
    wait_final(server, job_id)
    export = tmp_path / "job.log"
    coloured = stream_logs(server, "--color=always", "-o", str(export), job_id)
    assert "\033[" in coloured.stdout
    assert "\033[" not in export.read_text()
    assert [LINE.match(t).group(2) for t in export.read_text().splitlines()] == ["ERROR first", "second"]

    as_json = [json.loads(t) for t in stream_logs(server, "--json", job_id).stdout.splitlines()]
    assert [(e["sequence"], e["stream"], e["line"]) for e in as_json] == [
        (1, "stdout", "ERROR first"),
        (2, "stderr", "second"),
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", as_json[0]["timestamp"])

    to_stderr = stream_logs(server, "--stderr", job_id)
    assert to_stderr.stdout == "" and "[ERR] second" in to_stderr.stderr

    env = {**os.environ, "FORCE_COLOR": "1"}
    assert "\033[" in stream_logs(server, job_id, env=env).stdout
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "1"}
    assert "\033[" not in stream_logs(server, job_id, env=env).stdout
    under_tty = read_timed([*STREAM_LOGS, "--server", server.target, job_id], tty=True)
    assert any("\033[32m[OUT]" in text for text in under_tty.texts)
    env = {**os.environ, "NO_COLOR": "1"}
    plain_tty = read_timed([*STREAM_LOGS, "--server", server.target, job_id], tty=True, env=env)
    assert not any("\033[" in text for text in plain_tty.texts)


def test_several_jobs_labels_and_worst_status(server: Server) -> None:
    good = submit(server, "echo from good")
    bad = submit(server, "echo from bad; exit 2")
    result = stream_logs(server, "--no-timestamps", good, bad)
    assert result.returncode == 1
    assert sorted(result.stdout.splitlines()) == sorted([f"{good[:8]} [OUT] from good", f"{bad[:8]} [OUT] from bad"])
    assert result.stderr.count("📡 Streaming logs for job") == 2


def test_stats_reports_latency(server: Server) -> None:
    job_id = submit_python(server, "import time\nfor i in range(20):\n    print(i, flush=True)\n    time.sleep(0.02)\n")
    result = stream_logs(server, "--stats", job_id)
    assert result.returncode == 0
    match = re.search(r"📊 20 lines \((\d+) live\); delivery latency p50 ([\d.]+) ms, p99 ([\d.]+) ms", result.stderr)
    assert match, result.stderr
    assert float(match.group(2)) < 1000


def test_long_lines_and_odd_bytes_intact(server: Server) -> None:
    script = (
        "import sys\n"
        "out = sys.stdout.buffer\n"
        "out.write(b'x' * 1048576 + b'\\n')\n"
        "out.write(b'bar 50%\\r75%\\r100%\\n')\n"
        "out.write(b'tab\\there  \\n')\n"
        "out.write(b'bad \\xff\\xfe byte\\n')\n"
    )
    job_id = submit_python(server, script)
    result = subprocess.run(
        [*STREAM_LOGS, "--server", server.target, "-q", "--no-timestamps", job_id], capture_output=True, timeout=60
    )
    lines = result.stdout.decode().split("\n")  # bytes: text mode would turn \r into \n
    assert lines[0] == "[OUT] " + "x" * 1048576
    assert lines[1:] == ["[OUT] bar 50%\r75%\r100%", "[OUT] tab\there  ", "[OUT] bad \ufffd\ufffd byte", ""]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--tail", "-1"], "argument --tail: -1 is out of range: expected an integer at least 0"),
        (["--tail", "2.5"], "argument --tail: '2.5' is not an integer"),
        (["--reconnect-timeout", "-1"], "argument --reconnect-timeout: -1 is out of range"),
        (["--reconnect-timeout", "nan"], "argument --reconnect-timeout: nan is out of range"),
        (["--reconnect-timeout", "inf"], "argument --reconnect-timeout: inf is out of range"),
        (["--reconnect-timeout", "1e308"], "argument --reconnect-timeout: 1e308 is out of range"),
        (["--no-history", "--no-follow"], "--no-history and --no-follow together would show nothing"),
        (["--tail", "0", "--no-follow"], "--tail 0 and --no-follow together would show nothing"),
        (["--tail", "2", "--no-history"], "--tail N shows history; --no-history shows none"),
        (["--invert"], "--invert needs --grep"),
        (["--no-reconnect", "--reconnect-timeout", "5"], "--reconnect-timeout has no effect with --no-reconnect"),
        (["--json", "--raw"], "--raw does not apply"),
        (["--json", "--color=always"], "--color=always does not apply"),
        (["--no-timestamps", "--arrival-time"], "--no-timestamps shows none"),
        (["--colour", "pink"], "argument --color/--colour: invalid choice: 'pink'"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(home: Path, options: list[str], message: str) -> None:
    result = subprocess.run([*STREAM_LOGS, *options, str(uuid.uuid4())], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()  # one line: no usage block, no help
    assert line.startswith("stream-logs: ") and message in line
    assert line.endswith("(see stream-logs --help)")
    assert result.stdout == ""


def test_no_job_id_is_a_usage_error_and_version_is_the_packages(home: Path) -> None:
    missing = subprocess.run(STREAM_LOGS, capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2
    assert missing.stderr == (
        "stream-logs: name the jobs: JOB_ID, or --all, --name REGEX, --tag TAG (see stream-logs --help)\n"
    )
    version = subprocess.run([*STREAM_LOGS, "-V"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0
    assert version.stdout == f"stream-logs (hodei-stream) {importlib.metadata.version('hodei-stream')}\n"


def test_tail_0_is_no_history(server: Server) -> None:
    job_id = submit(server, "echo old; sleep 1.5; echo new")
    with HodeiClient(server) as client:
        wait_until(lambda: client.get_logs(job_id).entries, timeout=30, what="the first line")
    result = stream_logs(server, "--tail", "0", "-q", "--no-timestamps", job_id)
    assert result.returncode == 0
    assert result.stdout == "[OUT] new\n"


class SilentServer:
    """A Unix socket that accepts connections and never answers: a first GetJob that waits."""

    def __init__(self, path: Path) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(4)
        self.target = f"unix:{path}"
        self.accepted: list[socket.socket] = []

    def wait_for_client(self, timeout: float = 30.0) -> None:
        self.listener.settimeout(timeout)
        self.accepted.append(self.listener.accept()[0])

    def close(self) -> None:
        for sock in [*self.accepted, self.listener]:
            sock.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_while_waiting_for_the_first_answer(home: Path, signum: int) -> None:
    silent = SilentServer(home / "silent.sock")
    job_id = str(uuid.uuid4())
    process = subprocess.Popen(
        [*STREAM_LOGS, "--server", silent.target, job_id], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        silent.wait_for_client()
        process.send_signal(signum)
        out, err = process.communicate(timeout=15)
    finally:
        silent.close()
    assert process.returncode == 130, err
    assert out == ""
    assert err.strip().splitlines() == [
        f"⏹  stopped watching; the job goes on. Watch it again with: {err.split('with: ', 1)[1].strip()}"
    ]
    assert err.strip().endswith(f"--server {silent.target} {job_id}")


def test_server_that_cancels_the_call_is_not_an_interrupt(home: Path) -> None:
    cancelling = CancellingServer(home / "cancelling.sock")
    try:
        result = subprocess.run(
            [*STREAM_LOGS, "--server", cancelling.target, "--no-reconnect", str(uuid.uuid4())],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        cancelling.close()
    assert cancelling.resets >= 1
    assert result.returncode == 4, result.stderr  # the server ended it: not 130
    [line] = result.stderr.splitlines()
    assert line.startswith("stream-logs: ") and "stopped watching" not in line and "interrupt" not in line


def watch_and_interrupt(command: list[str], env: dict[str, str]) -> str:
    """Run a stream-logs command on a running job, Ctrl+C it once a line is shown; its stderr."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert "alive" in process.stdout.readline()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    return err


@pytest.mark.parametrize("how", ["python -m", "job_scripts/stream-logs"])
def test_interrupt_hint_runs_as_printed(server: Server, how: str) -> None:
    job_id = submit(server, "for i in $(seq 1 600); do echo alive $i; sleep 0.1; done")
    # A user who never activated the venv: no stream-logs on PATH.
    env = {**os.environ, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    assert shutil.which("stream-logs", path=env["PATH"]) is None, "stream-logs is installed system-wide here"
    launcher = Path(__file__).resolve().parents[2] / "job_scripts" / "stream-logs"
    program = STREAM_LOGS if how == "python -m" else [str(launcher)]
    err = watch_and_interrupt([*program, "--server", server.target, job_id], env)
    hint = err.strip().splitlines()[-1].split("Watch it again with: ", 1)[1]
    argv = shlex.split(hint)
    # The test's server is this HODEI_STREAM_HOME's embedded one: found without --server.
    assert argv[-1] == job_id and "--server" not in argv
    if how != "python -m":
        assert argv[0] == str(launcher)
    again = watch_and_interrupt(argv, env)  # the hint's command, word for word
    assert again.strip().splitlines()[-1].endswith(hint)
    with HodeiClient(server) as client:
        client.cancel_job(job_id)


HOSTILE = (
    "printf 'title \\033]0;owned\\007 clear \\033[2J\\033[H end\\n'; "
    "printf '\\033[32m✅ stream ended: job COMPLETED\\033[0m\\n'; "
    "printf 'tab\\tkept\\n'"
)


def test_control_characters_escaped_on_a_terminal_only(server: Server) -> None:
    job_id = submit(server, HOSTILE)
    wait_final(server, job_id)
    command = [*STREAM_LOGS, "--server", server.target, "--no-timestamps", job_id]
    on_tty = read_timed(command, tty=True)
    assert on_tty.status == 0
    assert [strip_colours(text) for text in on_tty.texts] == [
        "[OUT] title \\x1b]0;owned\\x07 clear \\x1b[2J\\x1b[H end",
        "[OUT] \\x1b[32m✅ stream ended: job COMPLETED\\x1b[0m",
        "[OUT] tab\tkept",
    ]
    assert all("\033]" not in text and "\033[2J" not in text for text in on_tty.texts)
    assert "\033[32m[OUT]" in on_tty.texts[0]  # our own colours stay
    raw = read_timed([*command, "--raw"], tty=True)
    assert "title \033]0;owned\007 clear \033[2J\033[H end" in raw.texts[0]
    piped = stream_logs(server, "-q", "--no-timestamps", job_id)
    assert piped.stdout.splitlines()[0] == "[OUT] title \033]0;owned\007 clear \033[2J\033[H end"
