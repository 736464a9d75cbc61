"""Assembling the embedded server: ``create_server(address, home, settings)``.

Kept apart from the daemon (as in gRPC's own examples) so tests can bind a temporary Unix
socket or port 0 in-process and learn the address actually bound.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import grpclib.server

from hodei_stream.address import Address, AddressError
from hodei_stream.server.fanout import Fanout
from hodei_stream.server.rpc import grpc_server
from hodei_stream.server.security import Security, require_token
from hodei_stream.server.servicers import JobExecutionService, LogStreamService
from hodei_stream.server.settings import ServerSettings
from hodei_stream.server.store import JobStore
from hodei_stream.server.worker import Worker
from hodei_stream.state_folder import is_answering


class ListenAddressError(ValueError):
    """An address the server will not listen on; the message is one line for the user."""


class StateFolderError(RuntimeError):
    """The state folder or the store in it cannot be used; the message is one line."""


@dataclass
class EmbeddedServer:
    grpc: grpclib.server.Server
    store: JobStore
    worker: Worker
    retention: asyncio.Task[None]

    async def close(self, cancel_jobs: bool = True) -> None:
        """Stop cleanly: cancel running jobs (their subscribers see them end) unless told to
        leave them running for the next server, stop serving, commit every pending line."""
        self.retention.cancel()
        await self.worker.close(cancel_jobs)
        self.grpc.close()
        await self.grpc.wait_closed()
        await self.store.close()


def listening_socket(address: str, security: Security = Security()) -> tuple[socket.socket, str]:
    """Bind ``unix:/path`` (mode 0600), a loopback ``host:port``, or (only with a token and
    TLS) any ``host:port``; the socket and its real address."""
    try:
        parsed = Address.parse(address)
    except AddressError:
        raise ListenAddressError(f"will not listen on '{address}': expected unix:/path or host:port") from None
    if parsed.is_unix:
        path = Path(parsed.path)
        if path.exists():
            if is_answering(address):
                raise ListenAddressError(f"another server already listens on {address}")
            path.unlink()  # left behind by a server that did not stop cleanly
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        path.chmod(0o600)
        return listener, f"unix:{path}"
    if not parsed.is_loopback() and not (security.token and security.tls):
        raise ListenAddressError(
            f"will not listen on '{address}' without both a token (HODEI_TOKEN) and TLS (--tls-cert/--tls-key):"
            " use unix:/path or a loopback host:port (127.0.0.1, [::1])"
        )
    recorded = parsed.recorded()
    family = socket.AF_INET6 if ":" in recorded.host else socket.AF_INET
    listener = socket.create_server((recorded.host, recorded.port), family=family)
    return listener, Address(host=recorded.host, port=listener.getsockname()[1]).target


def prepare_state_folder(home: Path) -> None:
    """Create ``home`` (mode 0700) and check that files can be written in it, or raise
    ``StateFolderError``: a server that cannot keep its jobs must not start at all."""
    probe = home / ".write-test"
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        home.chmod(0o700)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise StateFolderError(
            f"the state folder {home} is not usable ({error.strerror or error});"
            " set HODEI_STREAM_HOME to a folder you can write"
        ) from None


async def create_server(
    address: str, home: Path, settings: ServerSettings = ServerSettings(), security: Security = Security()
) -> tuple[EmbeddedServer, str]:
    """Open the store in ``home`` (created mode 0700), start the worker and serve on
    ``address``; return the running server and the address it really listens on."""
    prepare_state_folder(home)
    listener, bound_address = listening_socket(address, security)
    try:
        fanout = Fanout()
        store = JobStore(home, settings, fanout)
        worker = Worker(home, settings, store)
        await worker.start()
    except (OSError, sqlite3.Error) as error:
        # Nothing half-started is left behind: no socket that answers no one.
        listener.close()
        if (bound := Address.parse(bound_address)).is_unix:
            Path(bound.path).unlink(missing_ok=True)  # noqa: ASYNC240 (once, at a failed start)
        raise StateFolderError(f"cannot open the job store in {home}: {error}") from None
    server = grpc_server([JobExecutionService(store, worker), LogStreamService(store, fanout)], store)
    if security.token:
        require_token(server, security.token)
    await server.start(sock=listener, ssl=security.ssl_context())
    retention = asyncio.create_task(apply_retention(store, settings), name="retention")
    return EmbeddedServer(server, store, worker, retention), bound_address


async def apply_retention(store: JobStore, settings: ServerSettings) -> None:
    """Prune old jobs now and then on a schedule, for as long as the server runs."""
    while True:
        await store.prune(settings.retention_max_age_s, settings.retention_max_bytes)
        await asyncio.sleep(settings.retention_interval_s)
