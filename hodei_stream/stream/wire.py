"""gRPC calls over HTTP/2, read with h2 from a plain socket: stream-logs' transport.

Why not grpcio here: its Python iterator costs ~25 µs per message (locks, a condition
variable and a completion-queue event each), a ceiling near 40k lines/s, and ``import grpc``
alone costs ~100 ms of start-up.  Reading the HTTP/2 frames ourselves and splitting the
length-prefixed gRPC messages costs a few µs a message, so the streamer keeps up with a
fast server; the wire is the same gRPC, so any Hodei server answers it.

Only what stream-logs needs: unary and server-streaming calls, each on a connection of its
own (so threads never share one), over a Unix socket or TCP, plaintext or TLS
(``HODEI_TLS_CA``), with a bearer token (``HODEI_TOKEN``).
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from hodei_stream.servers import ENV_TLS_CA, ENV_TOKEN

CONNECT_TIMEOUT_S = 10.0
RECEIVE_CHUNK = 1 << 20
# Long lines (1 MiB and more) and GetLogs pages must fit in one message.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Generous windows: the server may send as fast as we read, without waiting for updates.
WINDOW_BYTES = 16 * 1024 * 1024
STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)  # fmt: skip


class CallError(Exception):
    """A call that did not end OK: its gRPC status code name and details."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


def _connect(target: str, timeout: float) -> tuple[socket.socket, str, bool]:
    """A connected socket for ``unix:/path`` or ``host:port``, its authority, and whether
    the way there is private (a Unix socket, loopback, or TLS): where a token may go."""
    try:
        if target.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(target.removeprefix("unix:"))
            return sock, "localhost", True
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ca_path = os.environ.get(ENV_TLS_CA)
        if ca_path:
            context = ssl.create_default_context(cafile=ca_path)
            context.set_alpn_protocols(["h2"])
            return context.wrap_socket(sock, server_hostname=host), target, True
        return sock, target, host in ("localhost", "127.0.0.1", "::1")
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise CallError("UNAVAILABLE", f"failed to connect to {target}: {reason}") from None


class Call:
    """One gRPC call on an HTTP/2 connection of its own.

    ``batches()`` yields the response messages' bytes as they are read; the call's status
    comes at the end: a status other than OK, or a connection that closed first, raises
    ``CallError``.  ``close()`` may be called from another thread to stop a reader.
    """

    def __init__(self, target: str, method: str, request: bytes, timeout: float | None = None) -> None:
        self._sock, authority, private = _connect(target, CONNECT_TIMEOUT_S)
        self._sock.settimeout(timeout)
        self._closed = threading.Event()
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self._h2.initiate_connection()
        # Wider windows by WINDOW_UPDATE, which counts at once; new SETTINGS would count
        # only once acknowledged, and a server acting on them sooner would break the rules.
        self._h2.increment_flow_control_window(WINDOW_BYTES)
        self._stream_id = self._h2.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "https" if isinstance(self._sock, ssl.SSLSocket) else "http"),
            (":path", method),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        if token := os.environ.get(ENV_TOKEN):
            if not private:
                self.close()
                raise CallError("UNAUTHENTICATED", f"{ENV_TOKEN} is only sent over TLS ({ENV_TLS_CA}) or to this machine")
            headers.append(("authorization", f"Bearer {token}"))
        self._h2.send_headers(self._stream_id, headers)
        self._h2.increment_flow_control_window(WINDOW_BYTES, stream_id=self._stream_id)
        self._h2.send_data(self._stream_id, b"\x00" + len(request).to_bytes(4, "big") + request, end_stream=True)
        self._buffer = bytearray()
        self._metadata: list[tuple[str, str]] | None = None
        self._status: tuple[str, str] | None = None  # (code name, details) once known
        self._send()

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in recv
            except OSError:
                pass
            self._sock.close()

    def initial_metadata(self) -> list[tuple[str, str]]:
        """The response headers, waiting for them if need be (empty if the call failed)."""
        while self._metadata is None and self._status is None:
            self._receive()
        return self._metadata or []

    def batches(self) -> Iterator[list[bytes]]:
        """Response messages as they are read: each list holds those that came in together."""
        try:
            while True:
                buffer = self._buffer
                batch = []
                start = 0
                while len(buffer) - start >= 5:
                    size = int.from_bytes(buffer[start + 1 : start + 5], "big")
                    end = start + 5 + size
                    if len(buffer) < end:
                        break
                    batch.append(bytes(buffer[start + 5 : end]))
                    start = end
                del buffer[:start]
                if batch:
                    yield batch
                if self._status is not None:
                    break
                self._receive()
            code, details = self._status
            if code != "OK":
                raise CallError(code, details)
            if self._buffer:
                raise CallError("INTERNAL", "the server ended the call in the middle of a message")
        finally:
            self.close()

    def unary(self) -> bytes:
        """The one response message of a unary call."""
        responses = [message for batch in self.batches() for message in batch]
        if len(responses) != 1:
            raise CallError("INTERNAL", f"a unary call answered {len(responses)} messages")
        return responses[0]

    def _send(self) -> None:
        if data := self._h2.data_to_send():
            try:
                self._sock.sendall(data)
            except OSError as error:
                self._fail("UNAVAILABLE", f"connection lost ({error.strerror or error})")

    def _fail(self, code: str, details: str) -> None:
        if self._status is None:
            self._status = (code, details)
        self.close()

    def _receive(self) -> None:
        """Read what the server sent next and act on it (blocks until something comes)."""
        if self._closed.is_set():
            self._fail("CANCELLED", "the call was closed")
            return
        try:
            data = self._sock.recv(RECEIVE_CHUNK)
        except TimeoutError:
            self._fail("DEADLINE_EXCEEDED", "no answer in time")
            return
        except OSError as error:
            self._fail("CANCELLED" if self._closed.is_set() else "UNAVAILABLE", f"connection lost ({error.strerror or error})")
            return
        if not data:
            self._fail("CANCELLED" if self._closed.is_set() else "UNAVAILABLE", "the server closed the connection")
            return
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            self._fail("UNAVAILABLE", f"not an HTTP/2 gRPC server ({type(error).__name__})")
            return
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self._buffer += event.data
                self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if len(self._buffer) > MAX_MESSAGE_BYTES + 5:
                    self._fail("RESOURCE_EXHAUSTED", "a message larger than 64 MiB")
            elif isinstance(event, h2.events.ResponseReceived):
                self._metadata = list(event.headers)
                self._take_status(event.headers)  # a trailers-only answer (e.g. NOT_FOUND)
            elif isinstance(event, h2.events.TrailersReceived):
                self._take_status(event.headers)
            elif isinstance(event, h2.events.StreamEnded) and self._status is None:
                self._status = ("INTERNAL", "the server ended the call without a status")
            elif isinstance(event, h2.events.StreamReset):
                self._fail("CANCELLED" if event.error_code == 8 else "INTERNAL", f"stream reset by the server (code {event.error_code})")
            elif isinstance(event, h2.events.ConnectionTerminated) and self._status is None:
                self._fail("UNAVAILABLE", "the server is going away")
        self._send()

    def _take_status(self, headers: list[tuple[str, str]]) -> None:
        fields = dict(headers)
        if fields.get(":status", "200") != "200":
            self._fail("UNAVAILABLE" if fields[":status"] in ("502", "503", "504") else "UNIMPLEMENTED",
                       f"HTTP status {fields[':status']}: not a gRPC server")
        elif "grpc-status" in fields:
            number = int(fields["grpc-status"]) if fields["grpc-status"].isdigit() else 2
            code = STATUS_NAMES[number] if number < len(STATUS_NAMES) else "UNKNOWN"
            message = fields.get("grpc-message", "")
            if "%" in message:  # percent-encoded on the wire; rare enough to import for
                from urllib.parse import unquote

                message = unquote(message)
            self._status = (code, message or code.lower())
