"""Fixtures shared by every test tier: a fresh state folder and a real embedded server.

``home`` gives a test its own ``HODEI_STREAM_HOME`` (under /tmp with a short name, because a
Unix socket path must fit in ~107 bytes); ``server`` runs ``hodei-server run`` on a Unix
socket in it as a real subprocess and yields the ``Server`` to point clients at;
``launch_server`` starts (and restarts) such servers by hand; ``wait_until`` waits for a
condition with a deadline instead of sleeping and hoping.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from hodei_stream.endpoint import Server
from hodei_stream.server.daemon import command_stop
from hodei_stream.server.spool import SPOOL_FOLDER_NAME, is_running
from hodei_stream.server.worker import WORKER_SOCKET_NAME
from hodei_stream.state_folder import embedded_target, is_answering

T = TypeVar("T")

# A test run started in the background of a non-interactive shell (``pytest … &``, as CI
# scripts and nohup do) has SIGINT ignored, and every command it starts would inherit that:
# the Ctrl+C tests would then test nothing.  Commands get the default a terminal gives them.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SERVER_START_TIMEOUT_S = 15.0
SERVER_STOP_TIMEOUT_S = 15.0


def wait_until(condition: Callable[[], T], timeout: float = 10.0, what: str = "the condition", poll: float = 0.01) -> T:
    """Return ``condition()``'s first truthy value; fail the test if none came within ``timeout``."""
    give_up = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= give_up:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(poll)


class ServerProcess:
    """``python -m hodei_stream.server.daemon run`` on ``<home>/server.sock``, as a subprocess.

    Its output goes to ``<home>/server-test.log`` (a pipe nobody reads could block it); the
    log's tail is quoted when the server fails to start or to stop.
    """

    def __init__(self, home: Path, *options: str) -> None:
        self.home = home
        self.server = Server(embedded_target(home), embedded=True)
        self.log_path = home / "server-test.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hodei_stream.server.daemon", "run", "--listen", self.server.target, *options],
                env={**os.environ, "HODEI_STREAM_HOME": str(home)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        give_up = time.monotonic() + SERVER_START_TIMEOUT_S
        while not is_answering(self.server.target):
            if self.process.poll() is not None or time.monotonic() >= give_up:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"the embedded server did not start:\n{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int:
        """SIGTERM the server and return its exit status (SIGKILL after a deadline: -9)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., object]:
    """``wait_until(condition, timeout=10.0, what="...")`` for tests that prefer a fixture."""
    return wait_until


# What makes our commands write for a CI: a test asks for a CI itself, or gets none, even
# when the test suite runs inside GitHub Actions or GitLab CI.
CI_VARIABLES = ("HODEI_CI", "GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_STEP_SUMMARY")


@pytest.fixture(autouse=True)
def outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh, empty HODEI_STREAM_HOME (mode 0700), set in os.environ; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="hs-"))
    monkeypatch.setenv("HODEI_STREAM_HOME", str(path))
    # The embedded server is the one under test, whatever the developer's shell points at.
    monkeypatch.delenv("HODEI_GRPC_URL", raising=False)
    yield path
    stop_embedded_server(path)
    stop_leftover_jobs(path)
    shutil.rmtree(path, ignore_errors=True)


def stop_embedded_server(home: Path) -> None:
    """Stop the embedded server a test's commands started in ``home`` on their own (a job
    script starts one on demand): with its folder removed it would run on, unreachable."""
    with contextlib.redirect_stdout(io.StringIO()):  # "stopped (pid …)" / "not running"
        command_stop(home, keep_jobs=False)


def stop_leftover_jobs(home: Path) -> None:
    """Stop the jobs, and their supervisors, that a test left without a server (it killed the
    server on purpose): a supervisor would wait for one for an hour (``--supervisor-linger``)."""
    for state_path in (home / SPOOL_FOLDER_NAME).glob("*.json"):
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError):
            continue
        if is_running(state.get("job_pid", 0), state.get("job_start_time")):
            os.killpg(state["job_pid"], signal.SIGKILL)  # the job leads a process group of its own
        if is_running(state.get("supervisor_pid", 0), state.get("supervisor_start_time")):
            os.kill(state["supervisor_pid"], signal.SIGKILL)
    # And supervisors that had not written their state yet: they name the home's socket.
    socket_argument = str(home / WORKER_SOCKET_NAME).encode()
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if socket_argument in (process / "cmdline").read_bytes().split(b"\0"):
                os.kill(int(process.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read


@pytest.fixture
def launch_server() -> Iterator[Callable[..., ServerProcess]]:
    """Start servers by hand (e.g. to restart one on the same home), ``launch(home, *options)``
    with options for ``hodei-server run``; all stopped at teardown."""
    started: list[ServerProcess] = []

    def launch(home: Path, *options: str) -> ServerProcess:
        started.append(ServerProcess(home, *options))
        return started[-1]

    yield launch
    for process in started:
        process.stop()


@pytest.fixture
def server(home: Path) -> Iterator[Server]:
    """A real embedded server on ``<home>/server.sock``; the test fails if it does not stop cleanly."""
    process = ServerProcess(home)
    yield process.server
    status = process.stop()
    if status != 0:
        pytest.fail(f"the embedded server exited with status {status} on SIGTERM:\n{process.log_tail()}")


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost that is also its own CA (trust it with
    ``HODEI_TLS_CA``), and its key, made in ``folder`` with the openssl CLI; skips without it."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command makes the test certificate, and it is not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return cert, key


# The Hodei platform stand-in's fixtures, ``platform`` and ``start_platform``, and ``gate``.
from tests.platform_standin.fixture import gate, platform, start_platform  # noqa: E402, F401
