"""Nobody else runs commands through the server: socket modes, another user, the token, TLS,
where the server agrees to listen, and the token kept away from jobs and logs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from server_helpers import all_logs, hodei_server, shell_job, subscribe

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import ClientSettings, Server
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server.spool import SPOOL_FOLDER_NAME, JobSpool
from tests.conftest import self_signed_certificate

Launch = Callable[..., Any]
WaitUntil = Callable[..., Any]
TOKEN = "s3cret-token-4f9a"
OTHER_USER = "hodei-test-peer"


def test_socket_and_folder_modes_and_another_user_is_refused(home: Path, launch_server: Launch) -> None:
    server = launch_server(home)
    socket_path = Path(server.server.target.removeprefix("unix:"))
    assert home.stat().st_mode & 0o777 == 0o700
    assert socket_path.stat().st_mode & 0o777 == 0o600
    assert (home / "worker.sock").stat().st_mode & 0o777 == 0o600
    # (The other user's python: the project's venv may sit in a folder only we can enter.)
    system_python = Path("/usr/bin/python3")
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser") or not system_python.exists():
        pytest.skip("a second user needs root, useradd, runuser and /usr/bin/python3 (the modes above are checked)")
    if subprocess.run(["id", OTHER_USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/false", OTHER_USER], check=True)
    connect = (
        "import socket, sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        socket.socket(socket.AF_UNIX).connect(path); print('connected')\n"
        "    except OSError as error: print(type(error).__name__)\n"
    )
    attempt = subprocess.run(
        [
            "runuser",
            "-u",
            OTHER_USER,
            "--",
            str(system_python),
            "-c",
            connect,
            str(socket_path),
            str(home / "worker.sock"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert attempt.stdout.split() == ["PermissionError", "PermissionError"], attempt.stderr


def as_configured(server: Server) -> Server:
    """``server`` with the token and CA this process's environment gives now, as a command's
    edge reads them (``resolve``)."""
    return Server(server.target, server.embedded, ClientSettings.from_environment())


@pytest.fixture
def token_server(home: Path, launch_server: Launch, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A server that requires ``TOKEN`` (from its environment, as users set it)."""
    monkeypatch.setenv("HODEI_TOKEN", TOKEN)
    server = launch_server(home)
    monkeypatch.delenv("HODEI_TOKEN")
    return server


def test_a_missing_or_wrong_token_is_unauthenticated(token_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for token in (None, "wrong", TOKEN + "x"):
        if token:
            monkeypatch.setenv("HODEI_TOKEN", token)
        with HodeiClient(as_configured(token_server.server)) as client:
            with pytest.raises(grpc.RpcError) as refused:
                client.logs.GetLogs(pb.GetLogsRequest(job_id="x"), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(ClientError) as error:
                client.list_jobs()
            assert error.value.status == ExitStatus.UNREACHABLE
            assert "HODEI_TOKEN" in str(error.value) and "\n" not in str(error.value)
    monkeypatch.setenv("HODEI_TOKEN", TOKEN)
    with HodeiClient(as_configured(token_server.server)) as client:
        assert client.list_jobs().total_count == 0


def test_the_token_reaches_no_job_no_supervisor_and_no_log(
    token_server: Any, home: Path, monkeypatch: pytest.MonkeyPatch, wait_until: WaitUntil
) -> None:
    monkeypatch.setenv("HODEI_TOKEN", TOKEN)
    with HodeiClient(as_configured(token_server.server)) as client:
        job_id = shell_job(client, "env; cat /proc/$PPID/environ | tr '\\0' '\\n'; sleep 0.5")
        wait_until(lambda: JobSpool(home / SPOOL_FOLDER_NAME, job_id).read_state().get("job_pid"))
        supervisor_pid = JobSpool(home / SPOOL_FOLDER_NAME, job_id).read_state()["supervisor_pid"]
        supervisor_environment = Path(f"/proc/{supervisor_pid}/environ").read_bytes()
        assert client.wait_final(job_id).status == pb.JOB_STATUS_COMPLETED
        job_output = "\n".join(e.line for e in all_logs(client, job_id))
    assert "PATH=" in job_output and TOKEN not in job_output and "HODEI_TOKEN" not in job_output
    assert TOKEN.encode() not in supervisor_environment
    token_server.stop()
    for path in home.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def tcp_server(
    home: Path, *options: str, env: dict[str, str], wait_until: WaitUntil
) -> tuple[subprocess.Popen[bytes], str]:
    """``hodei-server run --listen 127.0.0.1:0 OPTIONS``; the process and its address."""
    log = (home / "tcp-server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "hodei_stream.server.daemon", "run", "--listen", "127.0.0.1:0", *options],
        env={**os.environ, **env},
        stdout=log,
        stderr=log,
    )
    state = home / "server.json"
    address = json.loads(wait_until(lambda: state.exists() and state.read_text(), what="server.json"))["address"]
    return process, address


@pytest.fixture
def tls_token_server(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait_until: WaitUntil
) -> Iterator[str]:
    """A server on 127.0.0.1 with TLS and ``TOKEN``; this process set to trust and use them.
    Yields its address; at the end it must stop cleanly."""
    cert, key = self_signed_certificate(tmp_path)
    process, address = tcp_server(
        home, "--tls-cert", str(cert), "--tls-key", str(key), env={"HODEI_TOKEN": TOKEN}, wait_until=wait_until
    )
    monkeypatch.setenv("HODEI_TOKEN", TOKEN)
    monkeypatch.setenv("HODEI_TLS_CA", str(cert))
    try:
        yield address
    finally:
        process.terminate()
        assert process.wait(30) == 0


def test_tls_with_a_token_on_tcp(tls_token_server: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with HodeiClient(as_configured(Server(tls_token_server, embedded=False))) as client:
        job_id = shell_job(client, "seq 1 3")
        assert [a.entry.line for a in subscribe(client, job_id)] == ["1", "2", "3"]
    monkeypatch.delenv("HODEI_TLS_CA")  # plaintext to a TLS server: no connection
    with (
        HodeiClient(as_configured(Server(tls_token_server, embedded=False))) as client,
        pytest.raises(ClientError) as error,
    ):
        client.list_jobs()
    assert error.value.status == ExitStatus.UNREACHABLE
    assert "warning" not in (home / "tcp-server.log").read_text()


def test_loopback_tcp_without_a_token_warns(home: Path, wait_until: WaitUntil) -> None:
    process, address = tcp_server(home, env={}, wait_until=wait_until)
    process.terminate()
    assert process.wait(30) == 0
    log = (home / "tcp-server.log").read_text()
    assert f"warning: any local user can reach {address}" in log and "HODEI_TOKEN" in log


def test_other_addresses_need_a_token_and_tls(home: Path, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    environment = {**os.environ, "HODEI_STREAM_HOME": str(home)}
    without_token = {name: value for name, value in environment.items() if name != "HODEI_TOKEN"}
    for options, env in (
        (["--tls-cert", str(cert), "--tls-key", str(key)], without_token),
        ([], {**environment, "HODEI_TOKEN": TOKEN}),
    ):
        result = hodei_server("run", "--listen", "0.0.0.0:0", *options, env=env)
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "token" in result.stderr and "TLS" in result.stderr
    assert hodei_server("run", "--tls-cert", str(cert), env=environment).returncode == 2  # no key: usage error


def stream_logs(target: str, job_id: str) -> subprocess.CompletedProcess[str]:
    """stream-logs (its own HTTP/2 transport, not grpcio) with this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "hodei_stream.stream.cli", "--server", target, "-q", job_id],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_stream_logs_sends_the_token_and_speaks_tls(tls_token_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with HodeiClient(as_configured(Server(tls_token_server, embedded=False))) as client:
        job_id = shell_job(client, "seq 1 3")
    shown = stream_logs(tls_token_server, job_id)
    assert shown.returncode == 0, shown.stderr
    assert [line.split(" ", 1)[1] for line in shown.stdout.splitlines()] == ["[OUT] 1", "[OUT] 2", "[OUT] 3"]

    monkeypatch.setenv("HODEI_TOKEN", "wrong")
    refused = stream_logs(tls_token_server, job_id)
    assert refused.returncode == ExitStatus.UNREACHABLE
    assert "HODEI_TOKEN" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1

    monkeypatch.delenv("HODEI_TLS_CA")  # plaintext to a TLS server, and no token in clear
    monkeypatch.setenv("HODEI_TOKEN", TOKEN)
    plaintext = stream_logs(tls_token_server, job_id)
    assert plaintext.returncode == ExitStatus.UNREACHABLE
    assert len(plaintext.stderr.strip().splitlines()) == 1 and "Traceback" not in plaintext.stderr
