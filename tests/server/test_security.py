"""Nobody else runs commands through the server: socket modes, another user, the token, TLS,
where the server agrees to listen, and the token kept away from jobs and logs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpclib.health.v1.health_pb2 import HealthCheckResponse
from server_helpers import all_logs, grpcurl, grpcurl_binary, hodei_server, shell_job, subscribe

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server, server_at
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server.health_probe import health_status
from hodei_stream.server.spool import SPOOL_FOLDER_NAME, JobSpool
from hodei_stream.state_folder import client_token
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
    return server_at(server.target, server.embedded)


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


def test_the_opt_out_by_variable_warns_in_the_log(home: Path, wait_until: WaitUntil) -> None:
    process, address = tcp_server(home, env={"HODEI_NO_TOKEN": "1"}, wait_until=wait_until)
    process.terminate()
    assert process.wait(30) == 0
    log = (home / "tcp-server.log").read_text()
    assert f"warning: no token (--no-token): any local user can reach {address} and run commands as you" in log
    assert not (home / "token").exists()


def tokenless_environment(home: Path) -> dict[str, str]:
    """This process's environment with the state folder ``home`` and no token, opt-out or server set."""
    unset = ("HODEI_TOKEN", "HODEI_NO_TOKEN", "HODEI_GRPC_URL")
    return {**{name: value for name, value in os.environ.items() if name not in unset}, "HODEI_STREAM_HOME": str(home)}


@pytest.fixture
def start_tcp(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[str, str]]]:
    """``start(*options)``: ``hodei-server start --listen 127.0.0.1:0 OPTIONS`` with no token
    anywhere in the environment (this process's too); what it printed, and the address.  The
    server is stopped at the end."""
    monkeypatch.delenv("HODEI_TOKEN", raising=False)

    def start(*options: str) -> tuple[str, str]:
        result = hodei_server("start", "--listen", "127.0.0.1:0", *options, env=tokenless_environment(home))
        assert result.returncode == 0 and not result.stderr, result.stderr
        return result.stdout.strip(), json.loads((home / "server.json").read_text())["address"]

    yield start
    hodei_server("stop", env=tokenless_environment(home))


def as_owner(home: Path, address: str, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` (hodei, stream-logs) with ``HODEI_GRPC_URL=address`` and nothing else set."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**tokenless_environment(home), "HODEI_GRPC_URL": address},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_loopback_tcp_requires_a_token_that_the_owners_clients_find(
    home: Path, start_tcp: Callable[..., tuple[str, str]]
) -> None:
    printed, address = start_tcp()
    token_file = home / "token"
    assert printed.endswith(f"at {address}: token required (in {token_file}, readable only by you)"), printed
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 43  # 256 bits, URL-safe base64
    status = hodei_server("status", env=tokenless_environment(home))
    assert status.returncode == 0 and f"token required (in {token_file}, readable only by you)" in status.stdout
    # The owner's commands, with nothing set but the address (and localhost for 127.0.0.1).
    ran = as_owner(home, address, "hodei_stream.cli", "run", "--", "/bin/sh", "-c", "env; echo by-the-owner")
    assert ran.returncode == 0 and "by-the-owner" in ran.stdout, ran.stderr
    assert token not in ran.stdout and str(home) not in ran.stdout  # neither the token nor its file in a job
    port = address.rpartition(":")[2]
    job_id = as_owner(home, f"localhost:{port}", "hodei_stream.cli", "submit", "--", "echo", "followed").stdout.strip()
    shown = as_owner(home, address, "hodei_stream.stream.cli", "-q", job_id)
    assert shown.returncode == 0 and shown.stdout.split(" ", 1)[1] == "[OUT] followed\n", shown.stderr
    # The one rule, seen from inside: only this address, as recorded, gets the token.
    assert client_token(address) == client_token(f"localhost:{port}") == (address, token)
    assert client_token("127.0.0.1:1") == ("127.0.0.1:1", None)
    assert client_token(f"unix:{home}/server.sock") == (f"unix:{home}/server.sock", None)
    # A client that does not hold the file is refused, in one line.
    refused = as_owner(Path(tempfile.mkdtemp(prefix="hs-")), address, "hodei_stream.cli", "list")
    assert refused.returncode == ExitStatus.UNREACHABLE and "HODEI_TOKEN" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and token not in refused.stderr
    # The token is kept across a restart of the same state folder.
    server_pid = json.loads((home / "server.json").read_text())["pid"]
    assert token.encode() not in Path(f"/proc/{server_pid}/cmdline").read_bytes()
    assert token.encode() not in Path(f"/proc/{server_pid}/environ").read_bytes()
    assert hodei_server("stop", env=tokenless_environment(home)).returncode == 0
    assert client_token(address) == (address, None)  # no server there any more
    start_tcp()
    assert token_file.read_text().strip() == token
    for path in home.rglob("*"):
        if path.is_file() and path != token_file:
            assert token.encode() not in path.read_bytes(), path


def test_a_token_file_others_can_read_is_refused(home: Path) -> None:
    (home / "token").write_text("readable-by-all\n")
    (home / "token").chmod(0o644)
    result = hodei_server("run", "--listen", "127.0.0.1:0", env=tokenless_environment(home))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"refusing the token file {home / 'token'}: it can be read by other users (mode 0644)" in result.stderr
    assert "readable-by-all" not in result.stderr and not (home / "server.json").exists()


def second_user() -> str:
    """The second user, created for the tests with useradd; skips without root and the tools."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"):
        pytest.skip("a second user needs root, useradd and runuser")
    if subprocess.run(["id", OTHER_USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/false", OTHER_USER], check=True)
    return OTHER_USER


def as_second_user(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", second_user(), "--", *command], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder the second user can enter (0755), with grpcurl and the proto file for it."""
    folder = Path(tempfile.mkdtemp(prefix="hs-shared-"))
    folder.chmod(0o755)
    shutil.copy(grpcurl_binary(), folder / "grpcurl")
    shutil.copy(Path(__file__).parents[2] / "protos" / "hodei.proto", folder / "hodei.proto")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def queue_as_second_user(folder: Path, address: str, written: Path) -> subprocess.CompletedProcess[str]:
    """The second user's QueueJob (grpcurl, no reflection needed) of a job that writes ``written``."""
    job = {"job_id": {"value": str(uuid.uuid4())}, "name": "intruder", "command": "/bin/sh"}
    request = json.dumps({"job_definition": {**job, "arguments": ["-c", f"id > {written}"]}})
    method = "hodei.JobExecutionService/QueueJob"
    grpcurl_command = [str(folder / "grpcurl"), "-plaintext", "-import-path", str(folder), "-proto", "hodei.proto"]
    return as_second_user(*grpcurl_command, "-d", request, address, method)


def test_another_user_is_refused_and_cannot_read_the_token(
    home: Path, start_tcp: Callable[..., tuple[str, str]], shared_folder: Path
) -> None:
    _, address = start_tcp()
    second_user()
    home.chmod(0o755)  # the folder open to others: the file's own mode keeps the token
    read = as_second_user("cat", str(home / "token"))
    assert read.returncode != 0 and "Permission denied" in read.stderr and not read.stdout
    written = shared_folder / "written-by-the-job"
    queued = queue_as_second_user(shared_folder, address, written)
    assert queued.returncode != 0 and "Code: Unauthenticated" in queued.stderr, (queued.stdout, queued.stderr)
    with HodeiClient(server_at(address)) as client:
        assert client.list_jobs().total_count == 0  # nothing queued, so nothing ran
    assert not written.exists()


def test_the_opt_out_admits_everyone_and_says_so(
    home: Path, start_tcp: Callable[..., tuple[str, str]], shared_folder: Path, wait_until: WaitUntil
) -> None:
    printed, address = start_tcp("--no-token")
    assert printed.endswith(
        f"at {address}: no token (--no-token): any local user can reach it and run commands as you"
    ), printed
    assert len(printed.splitlines()) == 1 and not (home / "token").exists()
    ran = as_owner(home, address, "hodei_stream.cli", "run", "--", "echo", "by-the-owner")
    assert ran.returncode == 0 and "by-the-owner" in ran.stdout, ran.stderr
    second_user()
    written = shared_folder / "written-by-the-job"
    queued = queue_as_second_user(shared_folder, address, written)
    assert queued.returncode == 0, queued.stderr
    assert "uid=0(root)" in wait_until(lambda: written.exists() and written.read_text(), what="the job's file")


def test_grpcurl_with_the_token_from_the_file(
    home: Path, start_tcp: Callable[..., tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, address = start_tcp()
    for refused in (grpcurl(address, "list"), grpcurl(address, "grpc.health.v1.Health/Check")):
        assert refused.returncode != 0 and "Unauthenticated" in refused.stderr, refused.stderr
    # As the README says: the token in the environment, not on grpcurl's command line.
    monkeypatch.setenv("HODEI_TOKEN", (home / "token").read_text().strip())
    bearer = ["-expand-headers", "-H", "authorization: Bearer ${HODEI_TOKEN}"]
    listed = grpcurl(address, "list", flags=bearer)
    assert listed.returncode == 0, listed.stderr
    services = {"hodei.JobExecutionService", "hodei.LogStreamService", "grpc.health.v1.Health"}
    assert services <= set(listed.stdout.split())
    health = grpcurl(address, "grpc.health.v1.Health/Check", flags=bearer)
    assert health.returncode == 0 and json.loads(health.stdout) == {"status": "SERVING"}, health.stderr


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


def test_the_status_probe_takes_the_way_every_client_takes(tls_token_server: str) -> None:
    """``hodei-server status``'s health probe goes as the clients go (``endpoint.Route``): TLS
    trusting HODEI_TLS_CA, with the token; plaintext to a TLS server cannot ask."""
    ca = os.environ["HODEI_TLS_CA"]
    assert health_status(tls_token_server, ca) == HealthCheckResponse.SERVING
    assert health_status(tls_token_server, None) is None
