"""Helpers for the end-to-end tests: run commands as real subprocesses, under a real
pseudo-terminal or into a pipe, and time each line as it arrives."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server

ANSI = re.compile(r"\033\[[0-9;]*m")


def strip_colours(text: str) -> str:
    return ANSI.sub("", text)


STREAM_LOGS = [sys.executable, "-m", "hodei_stream.stream.cli"]
HODEI = [sys.executable, "-m", "hodei_stream.cli"]


def submit(server: Server, script: str, name: str = "test job", timeout_s: float | None = None) -> str:
    """Queue ``bash -c script`` and return the job id."""
    with HodeiClient(server) as client:
        return client.queue_job(name, "/bin/bash", ["-c", script], timeout_s=timeout_s)


def submit_python(server: Server, code: str, name: str = "python job") -> str:
    with HodeiClient(server) as client:
        return client.queue_job(name, "python3", ["-c", code])


@dataclass
class Timed:
    """A command's output lines with the monotonic time each arrived, and its exit status."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    status: int | None = None

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.lines]


def read_timed(command: list[str], *, tty: bool, timeout: float = 60.0, env: dict[str, str] | None = None) -> Timed:
    """Run ``command`` with stdout on a pseudo-terminal (``tty``) or a pipe; time each line."""
    if tty:
        reader, writer = pty.openpty()
    else:
        reader, writer = os.pipe()
    process = subprocess.Popen(command, stdout=writer, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    os.close(writer)
    result = Timed()
    pending = b""
    give_up = time.monotonic() + timeout
    try:
        while time.monotonic() < give_up:
            ready, _, _ = select.select([reader], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(reader, 65536)
            except OSError:  # EIO: the pty's other side closed
                chunk = b""
            if not chunk:
                break
            now = time.monotonic()
            pending += chunk
            *complete, pending = pending.split(b"\n")
            result.lines.extend((now, line.decode(errors="replace").rstrip("\r")) for line in complete)
        else:
            process.kill()
            raise AssertionError(f"{command} did not finish within {timeout}s; got {result.texts[-5:]}")
    finally:
        os.close(reader)
    result.status = process.wait(timeout=10)
    return result


class UnixProxy:
    """A Unix-socket proxy in front of the server, to cut stream-logs' connection at will."""

    def __init__(self, listen_path: Path, target_path: str, watch_for: bytes = b"") -> None:
        self.listen_path = listen_path
        self.target_path = target_path
        # How often ``watch_for`` passed through (within one read), e.g. a GOAWAY's debug data.
        self.watch_for = watch_for
        self.sightings = 0
        self.frozen: set[socket.socket] = set()  # connections whose bytes go nowhere
        self.connections: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        self.listen_path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.listen_path))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Close the listener and every connection through it."""
        with self.lock:
            if self.listener is not None:
                self.listener.close()
                self.listener = None
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self.connections.clear()
        self.listen_path.unlink(missing_ok=True)

    def freeze(self) -> None:
        """From now on, the connections open now carry nothing either way (a path gone
        silent without a FIN or RST); new ones work."""
        with self.lock:
            self.frozen.update(self.connections)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target_path)
            with self.lock:
                self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                if self.watch_for:
                    self.sightings += data.count(self.watch_for)
                if source in self.frozen:
                    continue
                sink.sendall(data)
            except OSError:
                break
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class CancellingServer:
    """An HTTP/2 server on a Unix socket that answers every call with RST_STREAM CANCEL, as
    a server does to calls it drops: the server, not the user, ended them."""

    def __init__(self, path: Path) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(4)
        self.target = f"unix:{path}"
        self.resets = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import h2.config
        import h2.connection
        import h2.errors
        import h2.events

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            # A client may hang up at any point (a probe of the socket does at once).
            with client, contextlib.suppress(ConnectionError):
                connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
                connection.initiate_connection()
                client.sendall(connection.data_to_send())
                while data := client.recv(65536):
                    for event in connection.receive_data(data):
                        if isinstance(event, h2.events.RequestReceived):
                            connection.reset_stream(event.stream_id, h2.errors.ErrorCodes.CANCEL)
                            self.resets += 1
                    client.sendall(connection.data_to_send())

    def close(self) -> None:
        self.listener.close()
