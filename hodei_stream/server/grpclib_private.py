"""The private names of grpclib and h2 that the server relies on, in one place.

The fan-out path (``rpc.StreamWriter``, ``rpc.ServerProtocol``) writes DATA frames and credits
WINDOW_UPDATEs itself, and the method table answers unknown methods (``rpc.grpc_server``):
grpclib and h2 have no public hook for either.  Each reach is one function here, so a new
grpclib or h2 is checked in one file: both are pinned in pyproject.toml (grpclib below 0.5,
h2 below 5), and tests/server/test_grpclib_private.py fails when a pinned version stops
having these names as used here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import grpclib.protocol
import grpclib.server
from grpclib.const import Handler
from h2.connection import H2Connection

# A stream id (or a window increment) has 31 bits: the first is reserved, and masked off.
STREAM_ID_BITS = 0x7FFFFFFF


def h2_stream_of(stream: grpclib.server.Stream[Any, Any]) -> grpclib.protocol.Stream:
    """grpclib's HTTP/2 stream under a server stream."""
    return stream._stream  # noqa: SLF001


def h2_connection_of(h2_stream: grpclib.protocol.Stream) -> H2Connection:
    """h2's connection that a grpclib stream sends through."""
    return h2_stream._h2_connection  # noqa: SLF001


def transport_of(h2_stream: grpclib.protocol.Stream) -> asyncio.Transport:
    """The asyncio transport that a grpclib stream writes to."""
    return h2_stream._transport  # noqa: SLF001


def connection_of(protocol: grpclib.protocol.H2Protocol) -> H2Connection:
    """h2's connection that a grpclib connection reads into."""
    return protocol.connection._connection  # noqa: SLF001


def has_unsent_bytes(h2_connection: H2Connection) -> bool:
    """Whether h2 holds bytes it has made but not yet handed over (grpclib writes them out
    after each call, so never at the points this is asked)."""
    return bool(h2_connection._data_to_send)  # noqa: SLF001


def holds_part_of_a_frame(h2_connection: H2Connection) -> bool:
    """Whether h2's incoming buffer holds bytes of a frame, the preamble or a header block it
    has yet to finish: the next read is then h2's to parse."""
    incoming = h2_connection.incoming_buffer
    return bool(incoming._data or incoming._preamble_len or incoming._headers_buffer)  # noqa: SLF001


def method_table(server: grpclib.server.Server) -> dict[str, Handler]:
    """grpclib's table of the server's methods (path → handler), looked up with ``.get``."""
    return server._mapping  # noqa: SLF001


def set_method_table(server: grpclib.server.Server, table: dict[str, Handler]) -> None:
    server._mapping = table  # noqa: SLF001


class ReapedProtocol(grpclib.protocol.H2Protocol):
    """grpclib's connection, which tells its server when it is lost (``on_lost``)."""

    on_lost: Callable[[], None] | None = None

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if self.on_lost is not None:
            self.on_lost()


class ProtocolServer(grpclib.server.Server):
    """grpclib's server, its connections of ``protocol_class``, each forgotten once it is lost
    and its calls have ended.  grpclib forgets a closed connection's handler (and with it every
    call task, stream and HTTP/2 state of the connection) only at every tenth new connection,
    so after a crowd of connections came and went, all of it would stay until others came."""

    protocol_class: type[ReapedProtocol] = ReapedProtocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reaping: set[asyncio.Future[None]] = set()  # connections lost, their calls ending

    def _protocol_factory(self) -> grpclib.protocol.H2Protocol:
        # grpclib's own, but for the protocol's class and its ``on_lost``.
        self.__gc_step__()
        handler = grpclib.server.Handler(self._mapping, self._codec, self._status_details_codec, self.__dispatch__)
        self._handlers.add(handler)
        protocol = self.protocol_class(handler, self._config, self._h2_config)
        protocol.on_lost = partial(self._forget_when_closed, handler)
        return protocol

    def _forget_when_closed(self, handler: grpclib.server.Handler) -> None:
        reaping = asyncio.ensure_future(self._forget(handler))
        self.reaping.add(reaping)
        reaping.add_done_callback(self.reaping.discard)

    async def _forget(self, handler: grpclib.server.Handler) -> None:
        await handler.wait_closed()  # the connection's calls, cancelled as it was lost, have ended
        self._handlers.discard(handler)
