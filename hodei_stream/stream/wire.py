"""gRPC calls on a plain socket: stream-logs' transport, the driver of ``http2.ClientConnection``.

Why not grpcio here: its Python iterator costs ~25 µs per message (locks, a condition
variable and a completion-queue event each), a ceiling near 40k lines/s, and ``import grpc``
alone costs ~100 ms of start-up.  Why not the h2 library either: it spends ~30 µs on each
HTTP/2 frame (it formats every frame for a debug log nobody reads), and a server that sends
one message per frame (as grpc's C++ server does) then caps the stream near 30k lines/s.
What a client of one call needs from HTTP/2 is small, and ``http2.py`` does it without I/O
for a couple of µs per frame; this module feeds it what the socket reads and writes what it
answers.

Only what stream-logs needs: unary and server-streaming calls, each on a connection of its
own (so threads never share one), over a Unix socket or TCP, plaintext or TLS
(``HODEI_TLS_CA``; the server must agree to ``h2`` by ALPN), with a bearer token
(``HODEI_TOKEN``).  Whatever the peer sends ends in a message list or a ``CallError`` with
a one-line message, never another exception.

- Liveness, as grpc-go's client keepalive: after ``KEEPALIVE_TIME_S`` (10 s) without any
  byte from the peer the call sends a PING; without an answer within
  ``KEEPALIVE_TIMEOUT_S`` (10 s) it ends UNAVAILABLE, so a dead path (no FIN, no RST) is
  noticed in at most 20 s and the follower reconnects.  ``HODEI_KEEPALIVE_S`` sets both
  (read at the command's edge, ``endpoint.ClientSettings``).
  A server that answers "too_many_pings" makes this process ping half as often from then on.
- Deadline: ``timeout`` bounds the whole call (connect, TLS and every read) on the
  monotonic clock and is sent as ``grpc-timeout``; past it the call ends DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from hodei_stream.endpoint import ClientSettings, Route
from hodei_stream.stream.http2 import (
    ENHANCE_YOUR_CALM,
    CallEnded,
    ClientConnection,
    GoAwayReceived,
    MessageDecoder,
    MessagesReceived,
    ProtocolError,
    ResponseHeaders,
)

CONNECT_TIMEOUT_S = 10.0
# grpc-go's client keepalive, the defaults its users set: a PING after this long without
# a byte from the peer, and the call fails when that PING is not answered in time.
KEEPALIVE_TIME_S = 10.0
KEEPALIVE_TIMEOUT_S = 10.0
# A server that finds our PINGs too frequent says so (GOAWAY ENHANCE_YOUR_CALM with
# "too_many_pings": grpc-core servers after 3 PINGs without data between); as grpc-go does,
# every later call of this process then waits twice as long before its PING.
TOO_MANY_PINGS = b"too_many_pings"
keepalive_slowdown = {"factor": 1}
# The most one read takes off the socket: what arrived together is decoded and formatted as
# one batch, so this bounds the batch's memory.  A server's Unix socket holds up to ~512 KiB
# (server/rpc.py: UNIX_SEND_BUFFER_BYTES); a replay of 1,000,000 lines peaked at 22-23 MiB
# with 256 KiB reads, 26-31 MiB with 1 MiB reads, in the same time (4 runs each).
RECEIVE_CHUNK = 256 * 1024


def grpc_timeout(seconds: float) -> str:
    """``seconds`` as a ``grpc-timeout`` value: at most 8 digits and a unit (PROTOCOL-HTTP2.md)."""
    for unit, per_second in (("m", 1000), ("S", 1), ("M", 1 / 60), ("H", 1 / 3600)):
        value = math.ceil(seconds * per_second)
        if value < 100_000_000:
            return f"{max(value, 1)}{unit}"
    return "99999999H"


class CallError(Exception):
    """A call that did not end OK: its gRPC status code name and details."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


def _connect(target: str, timeout: float, settings: ClientSettings) -> tuple[socket.socket, Route]:
    """A connected socket for ``unix:/path`` or ``host:port``, and the way it took
    (``endpoint.Route``: TLS or not, whether a token may go there)."""
    give_up = time.monotonic() + timeout
    try:
        route = Route.to(target, settings)
        if route.unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(route.unix_path)
            return sock, route
        sock = socket.create_connection((route.host, route.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not route.tls_ca:
            return sock, route
        import ssl

        context = ssl.create_default_context(cafile=route.tls_ca)
        context.set_alpn_protocols(["h2"])
        sock.settimeout(max(give_up - time.monotonic(), 0.001))  # connect and handshake within ``timeout``
        tls = context.wrap_socket(sock, server_hostname=route.host)
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise CallError("UNAVAILABLE", f"failed to connect to {target}: {reason}") from None
    if tls.selected_alpn_protocol() != "h2":
        tls.close()
        raise CallError(
            "UNAVAILABLE", f"the TLS server at {target} does not speak HTTP/2 (no ALPN h2): not a gRPC server"
        )
    return tls, route


class Call:
    """One gRPC call on an HTTP/2 connection of its own.

    ``message_batches()`` yields the response messages as they are read (their bytes, or what
    ``decode``, an ``http2.MessageDecoder``, reads them as); the call's status
    comes at the end: a status other than OK, or a connection that closed first, raises
    ``CallError``.  ``close()`` may be called from another thread to stop a reader.

    ``timeout``: seconds for the whole call (a deadline, sent as ``grpc-timeout``), none
    for a stream that lasts as long as the job.  ``keepalive_time`` / ``keepalive_timeout``:
    the silence before a PING and the wait for its answer (default ``settings.keepalive_s``,
    else ``KEEPALIVE_TIME_S`` / ``KEEPALIVE_TIMEOUT_S``).  ``settings``: the token, CA bundle
    and keepalive the command read from its environment (``endpoint.ClientSettings``).
    """

    def __init__(
        self,
        target: str,
        method: str,
        request: bytes,
        timeout: float | None = None,
        *,
        keepalive_time: float | None = None,
        keepalive_timeout: float | None = None,
        settings: ClientSettings = ClientSettings(),
        decode: MessageDecoder | None = None,
    ) -> None:
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._keepalive_time = (keepalive_time or settings.keepalive_s or KEEPALIVE_TIME_S) * keepalive_slowdown[
            "factor"
        ]
        self._keepalive_timeout = keepalive_timeout or settings.keepalive_s or KEEPALIVE_TIMEOUT_S
        self._closed = threading.Event()
        self._sock, route = _connect(
            target, CONNECT_TIMEOUT_S if timeout is None else min(timeout, CONNECT_TIMEOUT_S), settings
        )
        self._metadata: list[tuple[str, str]] | None = None
        self._messages: list[Any] = []  # received, not yet yielded
        self._status: tuple[str, str] | None = None  # (code name, details) once known
        self._wait: float | None = None  # the socket's timeout now, changed only when it must
        self._ping_sent = False  # a keepalive PING is out, and nothing came since
        self._quiet_s = 0.0  # seconds of silence from the peer toward the next PING (or its failure)
        self._tick_at: float | None = None  # when a watchdog tick is due (monotonic), if one is asked for
        self._ticked = False  # _read returned because a tick was due
        self.pings_refused = False  # the server said "too_many_pings" (GOAWAY ENHANCE_YOUR_CALM)
        metadata = []
        if timeout is not None:
            metadata.append(("grpc-timeout", grpc_timeout(timeout)))
        if refused := route.token_refused:
            self.close()
            raise CallError("UNAUTHENTICATED", refused)
        metadata += route.authorization.items()
        self._connection = ClientConnection(
            method,
            request,
            authority="localhost" if route.unix_path is not None else target,
            scheme="https" if route.tls_ca else "http",
            metadata=metadata,
            decode=decode,
        )
        self._send(self._connection.data_to_send())

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

    def answered_within(self, seconds: float) -> bool:
        """Whether the server answered (its headers, or the call's end) within ``seconds``;
        ``initial_metadata()`` then returns at once."""
        self._tick_at = time.monotonic() + seconds
        try:
            while self._metadata is None and self._status is None:
                self._receive()
                if self._ticked:
                    self._ticked = False
                    return False
            return True
        finally:
            self._tick_at = None

    def message_batches(self, idle_s: float | None = None) -> Iterator[list[Any]]:
        """Response messages as they are read: each list holds those that came in together.

        ``idle_s``: an empty list, a watchdog tick, after each ``idle_s`` seconds in which the
        peer sent nothing; the caller decides whether the silence is news.
        """
        try:
            if idle_s is not None:
                self._tick_at = time.monotonic() + idle_s
            while True:
                if self._messages:
                    batch, self._messages = self._messages, []
                    yield batch
                    if idle_s is not None:  # the silence counts from when the caller is ready again
                        self._tick_at = time.monotonic() + idle_s
                if self._status is not None:
                    break
                self._receive()
                if self._ticked and idle_s is not None:
                    self._ticked = False
                    yield []
                    self._tick_at = time.monotonic() + idle_s
            code, details = self._status
            if code != "OK":
                raise CallError(code, details)
        finally:
            self.close()

    def unary(self) -> bytes:
        """The one response message of a unary call."""
        responses = [message for batch in self.message_batches() for message in batch]
        if len(responses) != 1:
            raise CallError("INTERNAL", f"a unary call answered {len(responses)} messages")
        response: bytes = responses[0]
        return response

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as error:
            self._fail("UNAVAILABLE", f"connection lost ({error.strerror or error})")

    def _fail(self, code: str, details: str) -> None:
        if self._status is None:
            self._status = (code, details)
        self.close()

    def _read(self) -> bytes:
        """The next bytes from the peer (empty once the call ended, or at a watchdog tick),
        sending a keepalive PING when it is silent for too long and failing the call when
        that PING is not answered, or when the deadline passes."""
        while True:
            limit = self._keepalive_timeout if self._ping_sent else self._keepalive_time
            wait = limit - self._quiet_s
            if self._deadline is not None:
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    self._fail("DEADLINE_EXCEEDED", "no answer within the call's deadline")
                    return b""
                wait = min(wait, remaining)
            if self._tick_at is not None:
                to_tick = self._tick_at - time.monotonic()
                if to_tick <= 0:
                    self._ticked = True
                    return b""
                wait = min(wait, to_tick)
            if wait != self._wait:
                self._sock.settimeout(wait)
                self._wait = wait
            try:
                data = self._sock.recv(RECEIVE_CHUNK)
            except TimeoutError:
                # The silence counts toward the keepalive whatever woke us (the deadline or a
                # watchdog tick, both checked above), so ticks never postpone a PING.
                self._quiet_s += wait
                if self._quiet_s >= limit - 1e-6 and not self._on_keepalive_limit():
                    return b""
                continue
            except OSError as error:
                self._fail(
                    "CANCELLED" if self._closed.is_set() else "UNAVAILABLE",
                    f"connection lost ({error.strerror or error})",
                )
                return b""
            if not data:
                self._fail("CANCELLED" if self._closed.is_set() else "UNAVAILABLE", "the server closed the connection")
            self._ping_sent = False  # anything at all from the peer shows the path is alive
            self._quiet_s = 0.0
            return data

    def _on_keepalive_limit(self) -> bool:
        """A silence as long as the keepalive allows: a PING, or the call's end when the last
        one went unanswered; whether the call goes on."""
        self._quiet_s = 0.0
        if self._ping_sent:
            self._fail("UNAVAILABLE", f"no answer to a keepalive ping within {self._keepalive_timeout:g} s")
            return False
        self._ping_sent = True
        self._connection.ping(b"keepaliv")
        self._send(self._connection.data_to_send())
        return self._status is None

    def _receive(self) -> None:
        """Read what the server sent next and act on it (blocks until something comes)."""
        if self._closed.is_set():
            self._fail("CANCELLED", "the call was closed")
            return
        data = self._read()
        if not data:
            return
        for event in self._connection.receive_data(data):
            if type(event) is MessagesReceived:
                if self._messages:
                    self._messages += event
                else:
                    self._messages = event
            elif isinstance(event, ResponseHeaders):
                self._metadata = event.headers
            elif isinstance(event, GoAwayReceived):
                if event.error_code == ENHANCE_YOUR_CALM and event.debug_data == TOO_MANY_PINGS:
                    keepalive_slowdown["factor"] = min(keepalive_slowdown["factor"] * 2, 64)
                    self.pings_refused = True
            elif isinstance(event, (CallEnded, ProtocolError)):
                self._status = (event.code, event.details)
        if reply := self._connection.data_to_send():
            self._send(reply)
        if self._status is not None and self._status[0] != "OK":
            self.close()
