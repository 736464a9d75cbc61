"""``hodei-server`` as users run it: start/status/stop, restarts on the same home, TCP loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server_helpers import all_logs, hodei_server, shell_job, subscribe

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server, ensure_running, server_at
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.state_folder import embedded_target


def test_start_status_stop(home: Path) -> None:
    assert hodei_server("status").returncode == 1
    # Two starts at once start one server.
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "hodei_stream.server.daemon", "start"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [start.communicate(timeout=60)[0] for start in starts]
    assert [start.returncode for start in starts] == [0, 0]
    assert sum("already running" in output for output in outputs) == 1
    status = hodei_server("status")
    assert status.returncode == 0 and embedded_target(home) in status.stdout
    assert "cannot write" not in status.stdout, status.stdout  # a healthy store: nothing to say
    assert (home.stat().st_mode & 0o777) == 0o700
    assert (Path(embedded_target(home).removeprefix("unix:")).stat().st_mode & 0o777) == 0o600
    with HodeiClient(Server(embedded_target(home), embedded=True)) as client:
        assert client.wait_final(shell_job(client, "true")).status == pb.JOB_STATUS_COMPLETED
    stop = hodei_server("stop")
    assert stop.returncode == 0, stop.stderr
    assert hodei_server("status").returncode == 1
    assert hodei_server("stop").returncode == 0  # nothing to stop is not an error


def test_ensure_running_starts_the_daemon(home: Path) -> None:
    server = Server(embedded_target(home), embedded=True)
    ensure_running(server)
    try:
        with HodeiClient(server) as client:
            assert client.list_jobs().total_count == 0
    finally:
        assert hodei_server("stop").returncode == 0


def test_non_loopback_address_is_refused(home: Path) -> None:
    result = hodei_server("run", "--listen", "0.0.0.0:0")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "loopback" in result.stderr


def test_grpcio_client_over_tcp_loopback(home: Path, wait_until: Callable[..., Any]) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "hodei_stream.server.daemon", "run", "--listen", "127.0.0.1:0"],
        stderr=subprocess.DEVNULL,
    )
    try:
        state = home / "server.json"
        address = json.loads(wait_until(lambda: state.exists() and state.read_text(), what="server.json"))["address"]
        assert address.startswith("127.0.0.1:") and not address.endswith(":0")
        with HodeiClient(server_at(address)) as client:  # (the token from the state folder)
            job_id = shell_job(client, "seq 1 3")
            assert [a.entry.line for a in subscribe(client, job_id)] == ["1", "2", "3"]
    finally:
        server.terminate()
        assert server.wait(30) == 0


def test_history_survives_a_restart(home: Path, launch_server: Callable[[Path], Any]) -> None:
    first = launch_server(home)
    with HodeiClient(first.server) as client:
        done = shell_job(client, "seq 1 20000; echo bye >&2; exit 3")
        client.wait_final(done)
        running = shell_job(client, "echo started; sleep 60")
        client.get_logs(running)  # (the job may not have printed yet; the restart must not care)
    assert first.stop() == 0
    second = launch_server(home)
    with HodeiClient(second.server) as client:
        job = client.get_job(done)
        assert job.status == pb.JOB_STATUS_FAILED and job.executions[0].exit_code == "3"
        entries = all_logs(client, done, page_lines=5000)
        assert [e.sequence for e in entries] == list(range(1, 20002))
        assert [e.line for e in entries if not e.is_stderr] == [str(n) for n in range(1, 20001)]
        assert [e.line for e in entries if e.is_stderr] == ["bye"]
        assert [a.entry.sequence for a in subscribe(client, done, tail_lines=2)] == [20000, 20001]
        # Stopping the server cancelled the job that was still running.
        assert client.get_job(running).status == pb.JOB_STATUS_CANCELLED
    assert second.stop() == 0
