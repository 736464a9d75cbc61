"""Which server a command talks to, and starting the embedded one on demand.

The order is the platform's own: ``--server URL`` if given, else ``HODEI_GRPC_URL``, else the
embedded server of this user (a Unix socket in the state folder), started in the background
the first time it is needed.  Kept free of gRPC imports: checking that the embedded server
is up is a plain socket connect, so a running server costs the streamer nothing here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hodei_stream.exit_codes import ClientError, ExitStatus, for_grpc_code
from hodei_stream.state_folder import ENV_TOKEN, embedded_target, is_answering

ENV_URL = "HODEI_GRPC_URL"
UNARY_TIMEOUT_S = 15.0  # how long any one unary call may take
# Long lines (1 MiB and more) and GetLogs pages must fit in one message.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ServerAddressError(ValueError):
    """A server that cannot be used: a malformed URL (USAGE) or an embedded server that
    would not start (UNREACHABLE).  The message is one line for the user."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.USAGE) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Server:
    target: str  # a grpcio channel target: "host:port" or "unix:/abs/path"
    embedded: bool  # True when it is this user's embedded server

    def __str__(self) -> str:
        return self.target

    def failure(self, code: str, details: str, what: str, job_id: str = "") -> ClientError:
        """A failed call to this server (gRPC status code name, details) in the user's words;
        ``job_id``: the job the call was about, if any."""
        details = details or code.lower()
        if code == "NOT_FOUND" and job_id:
            message = f"no job {job_id} on {self}"
        elif code == "UNAVAILABLE":
            hint = "is the embedded server running? try: hodei-server start" if self.embedded else "check --server / HODEI_GRPC_URL"
            message = f"cannot reach the Hodei server at {self} ({details}); {hint}"
        elif code == "UNIMPLEMENTED":
            message = f"the server at {self} does not speak the Hodei API ({details})"
        elif code == "UNAUTHENTICATED":
            message = f"the server at {self} wants a token ({details}); set {ENV_TOKEN} to the server's token"
        else:
            message = f"{what}: {details}"
        return ClientError(message, for_grpc_code(code))


def parse_url(url: str) -> str:
    """Turn a user's server URL into a grpcio target, or raise ``ServerAddressError``.

    Accepts ``host:port``, ``[::1]:port``, ``unix:/path`` and the same with an ``http://`` or
    ``grpc://`` scheme, which the platform's own scripts sometimes carry.
    """
    url = url.strip()
    for scheme in ("http://", "grpc://"):
        if url.startswith(scheme):
            url = url[len(scheme):].rstrip("/")
    if url.startswith("unix:"):
        path = url[len("unix:"):].removeprefix("//")
        if not path:
            raise ServerAddressError(f"server URL '{url}' names no socket path (expected unix:/path)")
        return f"unix:{Path(path).expanduser().absolute()}"
    host, sep, port = url.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ServerAddressError(f"server URL '{url}' is not host:port or unix:/path")
    return url


def resolve(flag: str | None) -> Server:
    """The server named by ``--server``, else ``HODEI_GRPC_URL``, else the embedded one.

    Does not start anything: call ``ensure_running`` before the first call to the server.
    """
    for url in (flag, os.environ.get(ENV_URL)):
        if url:
            return Server(parse_url(url), embedded=False)
    return Server(embedded_target(), embedded=True)


def ensure_running(server: Server) -> None:
    """Start the embedded server in the background unless it already answers.

    A no-op for any other server.  Raises ``ServerAddressError`` with the daemon's own one-line
    reason when it could not be started.
    """
    if not server.embedded or is_answering(server.target):
        return
    result = subprocess.run(
        [sys.executable, "-m", "hodei_stream.server.daemon", "start", "--listen", server.target],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:] or ["no reason given"]
        raise ServerAddressError(f"could not start the embedded server: {reason[0]}", ExitStatus.UNREACHABLE)
