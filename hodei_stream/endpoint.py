"""Which server a command talks to, and starting the embedded one on demand.

The order is the platform's own: ``--server URL`` if given, else ``HODEI_GRPC_URL``, else the
embedded server of this user (a Unix socket in the state folder), started in the background
the first time it is needed, and started again by a command that finds it gone while it
watches a job (``restart_if_gone``, ``surviving_restart``).  Kept free of gRPC imports:
checking that the embedded server is up is a plain socket connect, so a running server costs
the streamer nothing here.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from hodei_stream.address import Address, AddressError, NoSocketPath
from hodei_stream.exit_codes import ClientError, ExitStatus, for_grpc_code
from hodei_stream.own_python import module_command
from hodei_stream.state_folder import (
    ENV_TLS_CA,
    ENV_TOKEN,
    client_token,
    embedded_target,
    is_answering,
)

ENV_URL = "HODEI_GRPC_URL"
ENV_KEEPALIVE = "HODEI_KEEPALIVE_S"  # both keepalive intervals of stream-logs' transport
UNARY_TIMEOUT_S = 15.0  # how long any one unary call may take
# Long lines (1 MiB and more) and GetLogs pages must fit in one message.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
RESTARTED_NOTICE = "⚠️  the embedded server had stopped; started it again, resuming"
# After the embedded server was found gone, how long a call may keep failing before the
# failure is the user's: a new server opens its store and replays spooled lines first.
RESTART_GRACE_S = 15.0
RESTART_POLL_S = 0.2

T = TypeVar("T")


class ServerAddressError(ValueError):
    """A server that cannot be used: a malformed URL (USAGE) or an embedded server that
    would not start (UNREACHABLE).  The message is one line for the user."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.USAGE) -> None:
        super().__init__(message)
        self.status = status


# NamedTuples and a slotted class rather than dataclasses: ``dataclasses`` imports ``inspect``,
# ~10 ms of stream-logs' start-up.
class ClientSettings(NamedTuple):
    """How a client reaches a server beyond its address, read from the environment once, at
    the command's edge (``resolve``), and handed down to the transports."""

    token: str | None = None  # sent as ``authorization: Bearer`` (``state_folder.client_token``)
    tls_ca: str | None = None  # HODEI_TLS_CA: the CA bundle that makes the connection TLS
    keepalive_s: float | None = None  # HODEI_KEEPALIVE_S: stream-logs' keepalive intervals

    @classmethod
    def from_environment(cls, token: str | None) -> ClientSettings:
        """The settings the user's environment gives, with ``token`` (the one ``client_token``
        chose: use ``server_at``); ``ServerAddressError`` (USAGE) for a value that makes no sense."""
        keepalive_s = None
        if text := os.environ.get(ENV_KEEPALIVE):
            try:
                keepalive_s = float(text)
            except ValueError:
                keepalive_s = math.nan
            if not 0.05 <= keepalive_s <= 3600:  # also refuses nan
                raise ServerAddressError(f"{ENV_KEEPALIVE} must be seconds between 0.05 and 3600, not {text[:20]!r}")
        return cls(token, os.environ.get(ENV_TLS_CA) or None, keepalive_s)

    def __repr__(self) -> str:  # the token never in a repr, hence never in a log
        shown = "'…'" if self.token else None
        return f"ClientSettings(token={shown}, tls_ca={self.tls_ca!r}, keepalive_s={self.keepalive_s!r})"


class Server:
    """A server to call: its target, whether it is this user's embedded server, and how to
    reach it (``settings``, not part of its identity: two equal servers may differ there)."""

    __slots__ = ("embedded", "settings", "target")

    def __init__(self, target: str, embedded: bool, settings: ClientSettings = ClientSettings()) -> None:
        self.target = target  # a grpcio channel target: "host:port" or "unix:/abs/path"
        self.embedded = embedded  # True when it is this user's embedded server
        self.settings = settings

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Server):
            return NotImplemented
        return (self.target, self.embedded) == (other.target, other.embedded)

    def __hash__(self) -> int:
        return hash((self.target, self.embedded))

    def __repr__(self) -> str:
        return f"Server(target={self.target!r}, embedded={self.embedded!r}, settings={self.settings!r})"

    def __str__(self) -> str:
        return self.target

    def failure(self, code: str, details: str, what: str, job_id: str = "") -> ClientError:
        """A failed call to this server (gRPC status code name, details) in the user's words;
        ``job_id``: the job the call was about, if any."""
        details = details or code.lower()
        if code == "NOT_FOUND" and job_id:
            message = f"no job {job_id} on {self}"
        elif code == "UNAVAILABLE":
            hint = (
                "is the embedded server running? try: hodei-server start"
                if self.embedded
                else "check --server / HODEI_GRPC_URL"
            )
            message = f"cannot reach the Hodei server at {self} ({details}); {hint}"
        elif code == "UNIMPLEMENTED":
            message = f"the server at {self} does not speak the Hodei API ({details})"
        elif code == "UNAUTHENTICATED":
            message = (
                f"the server at {self} wants a token ({details}); set {ENV_TOKEN} to the server's token"
                " (a server of yours on loopback keeps it in its state folder's token file)"
            )
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
            url = url[len(scheme) :].rstrip("/")
    try:
        address: Address | None = Address.parse(url)
    except NoSocketPath:
        raise ServerAddressError(f"server URL '{url}' names no socket path (expected unix:/path)") from None
    except AddressError:
        address = None
    if address is None or (not address.is_unix and address.port == 0):  # (port 0 is for listening)
        raise ServerAddressError(f"server URL '{url}' is not host:port or unix:/path")
    return address.absolute().target


def resolve(flag: str | None) -> Server:
    """The server named by ``--server``, else ``HODEI_GRPC_URL``, else the embedded one.

    Does not start anything: call ``ensure_running`` before the first call to the server.
    """
    for url in (flag, os.environ.get(ENV_URL)):
        if url:
            return server_at(parse_url(url))
    return server_at(embedded_target(), embedded=True)


def server_at(target: str, embedded: bool = False) -> Server:
    """The server at the grpcio ``target`` as a command reaches it: the token ``client_token``
    gives for it (with the address to send it to) and the rest of the environment's settings."""
    target, token = client_token(target)
    return Server(target, embedded, ClientSettings.from_environment(token))


def ensure_running(server: Server) -> bool:
    """Start the embedded server in the background unless it already answers; True when this
    call started it (False when it was up, or another command started it meanwhile).

    A no-op for any other server.  Raises ``ServerAddressError`` with the daemon's own one-line
    reason when it could not be started.
    """
    if not server.embedded or is_answering(server.target):
        return False
    import subprocess  # only to start the server: not on the way of a running one's first line

    result = subprocess.run(
        [*module_command("hodei_stream.server.daemon"), "start", "--listen", server.target],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        if is_answering(server.target):  # another command's start won the race
            return False
        reason = result.stderr.strip().splitlines()[-1:] or ["no reason given"]
        raise ServerAddressError(f"could not start the embedded server: {reason[0]}", ExitStatus.UNREACHABLE)
    # `start` waits on a lock for a concurrent start, then reports the server that one made.
    return "already running" not in result.stdout


def restart_if_gone(server: Server) -> bool:
    """After a failed call: when ``server`` is this user's embedded server and nothing answers
    on its socket any more (killed, crashed, stopped), start it again exactly as on first use.
    True when this call started it (say ``RESTARTED_NOTICE`` then)."""
    return server.embedded and ensure_running(server)


def surviving_restart(server: Server, call: Callable[[], T], notice: Callable[[str], None]) -> T:
    """``call()`` (a unary call that raises ``ClientError``), surviving the embedded server's death.

    When it fails as unreachable on the embedded server, the server is started again if it is
    gone, and the call repeated until it answers, for up to ``RESTART_GRACE_S`` (a client such as
    grpcio may keep failing for a moment after the server is back).  Any other failure, and
    every failure on a server named by the user, is raised at once.
    """
    give_up: float | None = None
    while True:
        try:
            return call()
        except ClientError as error:
            if not server.embedded or error.status != ExitStatus.UNREACHABLE:
                raise
            now = time.monotonic()
            give_up = give_up or now + RESTART_GRACE_S
            if now >= give_up:
                raise
        if restart_if_gone(server):
            notice(RESTARTED_NOTICE)
        else:
            time.sleep(RESTART_POLL_S)
