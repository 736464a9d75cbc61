"""Assembling the embedded server: ``create_server(address, home, settings)``.

Kept apart from the daemon (as in gRPC's own examples) so tests can bind a temporary Unix
socket or port 0 in-process and learn the address actually bound.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import grpclib.server

from hodei_stream.servers import is_answering
from hodei_stream.server.fanout import Fanout
from hodei_stream.server.servicers import JobExecutionService, LogStreamService
from hodei_stream.server.settings import ServerSettings
from hodei_stream.server.store import JobStore
from hodei_stream.server.worker import Worker

LOOPBACK_NAMES = {"localhost": "127.0.0.1"}


class ListenAddressError(ValueError):
    """An address the server will not listen on; the message is one line for the user."""


@dataclass
class EmbeddedServer:
    grpc: grpclib.server.Server
    store: JobStore
    worker: Worker

    async def close(self, cancel_jobs: bool = True) -> None:
        """Stop cleanly: cancel running jobs (their subscribers see them end) unless told to
        leave them running for the next server, stop serving, commit every pending line."""
        await self.worker.close(cancel_jobs)
        self.grpc.close()
        await self.grpc.wait_closed()
        await self.store.close()


def listening_socket(address: str) -> tuple[socket.socket, str]:
    """Bind ``unix:/path`` (mode 0600) or a loopback ``host:port``; the socket and its real address."""
    if address.startswith("unix:"):
        path = Path(address.removeprefix("unix:"))
        if path.exists():
            if is_answering(address):
                raise ListenAddressError(f"another server already listens on {address}")
            path.unlink()  # left behind by a server that did not stop cleanly
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        path.chmod(0o600)
        return listener, f"unix:{path}"
    host, _, port = address.rpartition(":")
    host = LOOPBACK_NAMES.get(host, host.strip("[]"))
    try:
        loopback = ipaddress.ip_address(host).is_loopback and port.isdigit()
    except ValueError:
        loopback = False
    if not loopback:
        raise ListenAddressError(
            f"will not listen on '{address}': use unix:/path or a loopback host:port (127.0.0.1, [::1])")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, int(port)), family=family)
    bound_port = listener.getsockname()[1]
    return listener, f"[{host}]:{bound_port}" if family == socket.AF_INET6 else f"{host}:{bound_port}"


async def create_server(address: str, home: Path,
                        settings: ServerSettings = ServerSettings()) -> tuple[EmbeddedServer, str]:
    """Open the store in ``home`` (created mode 0700), start the worker and serve on
    ``address``; return the running server and the address it really listens on."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)
    listener, bound_address = listening_socket(address)
    fanout = Fanout()
    store = JobStore(home, settings, fanout)
    worker = Worker(home, settings, store)
    await worker.start()
    server = grpclib.server.Server([JobExecutionService(store, worker), LogStreamService(store)])
    await server.start(sock=listener)
    return EmbeddedServer(server, store, worker), bound_address
