"""The stand-in's only reach into grpclib's and h2's internals, in one place.

Two platform behaviours, and one fact, have no public grpclib API:
- a grpc-core server's ping policy: grpclib lets h2 answer every PING and tells nobody, so a
  protocol subclass replaces grpclib's (empty) PING handler with the policy, and counts what the
  server sends through grpclib's two send hooks;
- a stream reset with the HTTP/2 error code CANCEL, which the platform's ListJobs ends in
  (grpclib's own ``Stream.cancel`` resets with NO_ERROR);
- the port a server started on port 0 bound.
"""

from __future__ import annotations

import time
from asyncio import BaseTransport
from dataclasses import dataclass
from typing import Any

import grpclib.server
from grpclib.protocol import H2Protocol
from h2.errors import ErrorCodes
from h2.events import PingReceived

TOO_MANY_PINGS = b"too_many_pings"


@dataclass(frozen=True)
class PingPolicy:
    """grpc-core's: a PING sooner than ``interval_s`` after the previous one, with nothing sent
    between, is a strike; more than ``max_strikes`` strikes end the connection with GOAWAY
    ENHANCE_YOUR_CALM ``too_many_pings``.  Without an open call the interval is ``idle_interval_s``."""

    interval_s: float = 300.0  # GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS
    idle_interval_s: float = 7200.0  # without calls, unless GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS
    max_strikes: int = 2  # GRPC_ARG_HTTP2_MAX_PING_STRIKES


class PingPolicingProtocol(H2Protocol):
    """grpclib's server protocol, with ``PingPolicy`` applied to the PINGs the client sends."""

    def __init__(self, plain: H2Protocol, policy: PingPolicy) -> None:
        super().__init__(plain.handler, plain.config, plain.h2_config)
        self.policy = policy
        self.strikes = 0
        self.last_ping: float | None = None  # None: the next PING is allowed whenever it comes

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        self.processor.processors[PingReceived] = self.ping_received
        # grpclib calls these when the server sends headers or data: grpc-core then forgives.
        connection: Any = self.connection
        for hook_name in ("headers_send_process", "data_send_process"):
            connection.__dict__[hook_name] = self.forgiving(getattr(connection, hook_name))

    def forgiving(self, hook: Any) -> Any:
        def sent() -> None:
            self.strikes = 0
            self.last_ping = None
            hook()

        return sent

    def ping_received(self, event: PingReceived) -> None:
        now = time.monotonic()
        h2_connection = self.connection._connection  # noqa: SLF001 (no public view of the open streams)
        calls_open = any(stream.open for stream in h2_connection.streams.values())
        interval = self.policy.interval_s if calls_open else self.policy.idle_interval_s
        too_soon = self.last_ping is not None and now - self.last_ping < interval
        self.last_ping = now
        if too_soon:
            self.strikes += 1
            if self.strikes > self.policy.max_strikes:
                h2_connection.close_connection(error_code=ErrorCodes.ENHANCE_YOUR_CALM, additional_data=TOO_MANY_PINGS)
                self.connection.flush()
                self.processor.close("too_many_pings")  # the transport closes once GOAWAY is written


class PlatformServer(grpclib.server.Server):
    """A grpclib server whose connections follow ``PingPolicy``."""

    def __init__(self, handlers: list[Any], ping_policy: PingPolicy) -> None:
        super().__init__(handlers)
        self.ping_policy = ping_policy

    def _protocol_factory(self) -> H2Protocol:
        return PingPolicingProtocol(super()._protocol_factory(), self.ping_policy)

    def bound_address(self) -> str:
        """``HOST:PORT`` of the TCP socket it listens on."""
        assert self._server is not None, "not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"


async def reset_with_cancel(stream: grpclib.server.Stream[Any, Any]) -> None:
    """End the call with RST_STREAM(CANCEL) and nothing else: the client sees CANCELLED,
    "Received RST_STREAM with error code 8"."""
    await stream._stream.reset(ErrorCodes.CANCEL)  # noqa: SLF001 (grpclib resets with NO_ERROR only)
    stream._cancel_done = True  # noqa: SLF001 (so that grpclib sends no trailers after the reset)
