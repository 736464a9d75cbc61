"""A loopback TCP proxy that fails the way networks do, on command: ``reset()`` (every
connection through it ends with an RST), ``black_hole()`` (the connections open now stop
carrying bytes either way, with no FIN and no RST: a NAT entry expired, a VM paused) and
``resume()`` (they carry bytes again).  Connections made after a black hole flow, as new
ones do on a real network whose old path died.  The upstream is a Unix socket (the embedded
server) or ``host:port``."""

from __future__ import annotations

import socket
import struct
import threading


class Link:
    """One client connection and its upstream, pumped both ways while ``flowing`` is set."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.sockets = (client, upstream)
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = threading.Event()
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.1)  # wakes now and then to see whether the path was cut
        while not self.closed.is_set():
            if not self.flowing.wait(0.1):
                continue  # black-holed: bytes wait in the kernel, nobody reads them
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        self.close()

    def close(self, rst: bool = False) -> None:
        self.closed.set()
        for sock in self.sockets:
            try:
                if rst:  # close with linger 0: the peer gets an RST, not a FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class FaultProxy:
    """Listens on 127.0.0.1 (a free port: ``address``) and forwards to ``upstream``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.links: list[Link] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if self.upstream.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.upstream.removeprefix("unix:"))
            return sock
        host, _, port = self.upstream.rpartition(":")
        return socket.create_connection((host, int(port)), timeout=10)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()  # the server is down: so is the way through us
                continue
            with self.lock:
                self.links.append(Link(client, upstream))

    def black_hole(self) -> None:
        with self.lock:
            for link in self.links:
                link.flowing.clear()

    def resume(self) -> None:
        with self.lock:
            for link in self.links:
                link.flowing.set()

    def reset(self) -> None:
        with self.lock:
            for link in self.links:
                link.close(rst=True)
            self.links.clear()

    def stop(self) -> None:
        self.listener.close()
        self.reset()
