"""The embedded server SIGKILLed while a command watches a job: stream-logs, hodei run and a
job script (foreground and background) start it again, say so in one line, and end 0 with
every line once, in order.  The server is the one at HODEI_STREAM_HOME's socket, started on
first use as a user's would be, so that the watching command can start it again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import RESTARTED_NOTICE, Server, ensure_running, resolve
from hodei_stream.state_folder import is_answering
from tests.conftest import wait_until
from tests.jobs.scripts import launch as launch_script

from .streaming import HODEI, STREAM_LOGS, submit_python
from .test_stream_logs import numbered_job

LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \[(?:OUT|ERR)\] (.*)$")
LINES = 3000
KILL_AFTER = 500  # lines seen before the server is killed


@pytest.fixture
def embedded(home: Path) -> Iterator[Server]:
    """This user's embedded server (no --server, no HODEI_GRPC_URL), started as on first use."""
    server = resolve(None)
    assert server.embedded
    ensure_running(server)
    yield server
    subprocess.run(
        [sys.executable, "-m", "hodei_stream.server.daemon", "stop"], capture_output=True, timeout=60, check=False
    )


def kill_server(home: Path) -> None:
    """SIGKILL the embedded server (no clean shutdown; its jobs' supervisors spool on)."""
    state = json.loads((home / "server.json").read_text())  # what hodei-server start recorded
    assert is_answering(state["address"]), "the embedded server is not running"
    os.kill(state["pid"], signal.SIGKILL)
    wait_until(lambda: not is_answering(state["address"]), timeout=10, what="the killed server to stop answering")


def stored_lines(server: Server, job_id: str) -> list[str]:
    """The job's lines as the server stored them, once it has ended."""
    with HodeiClient(server) as client:
        client.wait_final(job_id)
        return [entry.line for entry in client.all_logs(job_id)]


def watch_and_kill(command: list[str], home: Path, *, kill_after: int = KILL_AFTER) -> tuple[int, list[str], str]:
    """Run ``command``; after ``kill_after`` log lines on its stdout, SIGKILL the embedded
    server.  Its exit status, the log lines' texts and its stderr."""
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)
    reader.start()
    texts: list[str] = []
    arrivals: list[float] = []
    for line in process.stdout:
        if match := LOG_LINE.match(line.rstrip("\n")):
            texts.append(match.group(1))
            arrivals.append(time.monotonic())
            if len(texts) == kill_after:
                kill_server(home)
    status = process.wait(timeout=120)
    gap = max((b - a for a, b in zip(arrivals[kill_after - 1 :], arrivals[kill_after:], strict=False)), default=0.0)
    print(f"{command[2:4]}: longest wait for a line after the kill {gap:.2f}s")
    reader.join(30)
    return status, texts, "".join(errors)


def check_healed(status: int, err: str, texts: list[str], expected: list[str]) -> None:
    assert status == 0, err
    assert err.count(RESTARTED_NOTICE) == 1, err
    assert "cannot reach" not in err  # no retry notices: the server was started again at once
    assert "Traceback" not in err
    assert texts == expected


def test_stream_logs_starts_the_server_again_and_resumes(embedded: Server, home: Path) -> None:
    job_id = submit_python(embedded, numbered_job(LINES, 50, 0.05))
    status, texts, err = watch_and_kill([*STREAM_LOGS, job_id], home)
    check_healed(status, err, texts, [f"n={i}" for i in range(LINES)])


def test_hodei_run_starts_the_server_again_and_resumes(embedded: Server, home: Path) -> None:
    status, texts, err = watch_and_kill([*HODEI, "run", "--", "python3", "-c", numbered_job(LINES, 50, 0.05)], home)
    check_healed(status, err, texts, [f"n={i}" for i in range(LINES)])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["--foreground", "--background"])
def test_a_job_script_starts_the_server_again_and_resumes(embedded: Server, home: Path, mode: str) -> None:
    run = launch_script("data_processing_simple.sh", home, "--etl", "--records", "20000", mode)
    try:
        wait_until(
            lambda: any(LOG_LINE.match(text) for _, text in run.stdout) or run.process.poll() is not None,
            timeout=120,
            what="the job's first line",
        )
        kill_server(home)
        status = run.finish()
    finally:
        if run.process.poll() is None:
            run.process.kill()
    err = run.err_text + "\n" + "\n".join(run.out_text)  # in the background the streamer's notices come by stdout
    job_id = re.search(r"submitted job '[^']+' as (\S+) to", run.err_text).group(1)  # type: ignore[union-attr]
    texts = [match.group(1) for text in run.out_text if (match := LOG_LINE.match(text))]
    check_healed(status, err, texts, stored_lines(embedded, job_id))
    assert re.search(r"Status: +✅ COMPLETED", run.err_text), run.err_text
