"""stream-logs through nginx's ``grpc_pass`` (Debian's nginx, an HTTP/2 proxy nobody here wrote)
in front of the embedded server, in clear (h2c) and over TLS: every line once and in order;
with the backend stopped nginx answers HTTP 502, and stream-logs backs off until
--reconnect-timeout; a backend back within it is resumed exactly."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hodei_stream.exit_codes import ExitStatus
from hodei_stream.state_folder import ENV_TLS_CA
from tests.conftest import self_signed_certificate, wait_until

from .streaming import STREAM_LOGS, submit, submit_python
from .test_stream_logs import follow_through_outage, numbered_job

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
CONFIG = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port}{tls} http2;
        {certificate}
        location / {{ grpc_pass unix:{backend}; }}
    }}
}}
"""


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    target: str
    error_log: Path
    ca: Path | None  # the certificate to trust, over TLS

    def be_trusted(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """From now on, clients started by the test trust nginx (jobs are queued before, in clear)."""
        if self.ca is not None:
            monkeypatch.setenv(ENV_TLS_CA, str(self.ca))

    def upstream_failures(self, method: str = "SubscribeLogs") -> int:
        """``method`` calls nginx could not pass to the backend (each answered HTTP 502)."""
        log = self.error_log.read_text(errors="replace").splitlines()
        return sum(1 for line in log if "connect() to unix:" in line and f"/{method} " in line)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=["h2c", "tls"])
def nginx(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[Nginx]:
    """nginx in the foreground on a free loopback port, passing gRPC to ``home``'s server socket."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian's nginx: apt-get install nginx)")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    tls, certificate, ca = "", "", None
    if request.param == "tls":
        ca, key = self_signed_certificate(tmp_path)
        tls, certificate = " ssl", f"ssl_certificate {ca}; ssl_certificate_key {key};"
    port = free_port()
    # As root nginx's workers would run as nobody, who may not open our 0600 socket.
    user = "user root;\n" if os.geteuid() == 0 else ""
    config = prefix / "nginx.conf"
    config.write_text(
        CONFIG.format(
            user=user, prefix=prefix, port=port, tls=tls, certificate=certificate, backend=home / "server.sock"
        )
    )
    error_log = prefix / "error.log"
    process = subprocess.Popen(
        # -e: the log nginx opens before it reads the configuration (not /var/log/nginx).
        [
            NGINX,
            "-p",
            str(prefix),
            "-c",
            str(config),
            "-e",
            str(error_log),
            "-g",
            f"daemon off; error_log {error_log} info;",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        if process.poll() is not None:
            pytest.fail(f"nginx did not start:\n{error_log.read_text(errors='replace') if error_log.exists() else ''}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, timeout=30, what="nginx to listen")
    yield Nginx(process, f"127.0.0.1:{port}", error_log, ca)
    process.terminate()
    process.wait(timeout=30)


def test_every_line_once_in_order_through_nginx(
    home: Path, launch_server, nginx: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = launch_server(home)
    job_id = submit_python(backend.server, numbered_job(3000, 100, 0.02))
    nginx.be_trusted(monkeypatch)
    result = subprocess.run(
        [*STREAM_LOGS, "--server", nginx.target, "-q", "--no-timestamps", job_id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"[OUT] n={i}" for i in range(3000)]


def test_backend_stopped_nginx_answers_502_and_the_timeout_holds(
    home: Path, launch_server, nginx: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = launch_server(home)
    job_id = submit(backend.server, "echo first; sleep 60")
    nginx.be_trusted(monkeypatch)
    process = subprocess.Popen(
        [*STREAM_LOGS, "--server", nginx.target, "--reconnect-timeout", "3", job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "first" in process.stdout.readline()
    backend.process.kill()
    backend.process.wait()
    lost = time.monotonic()
    _, err = process.communicate(timeout=60)
    took = time.monotonic() - lost
    attempts = nginx.upstream_failures()
    print(
        f"nginx 502 ({nginx.target}): exit {process.returncode} after {took:.1f}s "
        f"and {attempts} SubscribeLogs attempts nginx answered 502"
    )
    assert process.returncode == ExitStatus.UNREACHABLE, err
    assert took < 10
    assert 3 <= attempts <= 8
    assert "502" in err.splitlines()[-1] and "Traceback" not in err


def test_backend_back_within_the_timeout_is_resumed_exactly(
    home: Path, launch_server, nginx: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = launch_server(home)

    def outage() -> None:
        first.process.kill()  # nginx answers 502 until the next server listens
        first.process.wait()
        wait_until(lambda: nginx.upstream_failures() >= 2, timeout=20, what="nginx to answer 502 twice")
        launch_server(home)

    job_id = submit_python(first.server, numbered_job(5000, 50, 0.05))
    nginx.be_trusted(monkeypatch)
    follow_through_outage(nginx.target, job_id, outage)
