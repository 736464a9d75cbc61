"""The private names of grpclib and h2 that the server relies on
(hodei_stream/server/grpclib_private.py), held to what the pinned versions do: each accessor
on a real h2 connection and a real grpclib server and call over a Unix socket.  A new grpclib
or h2 that renames or changes one fails here, before the fan-out path misbehaves."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import grpclib.protocol
import grpclib.server
from grpclib.client import Channel
from grpclib.const import Cardinality, Handler
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.stream import StreamState

from hodei_stream.server import grpclib_private
from hodei_stream.stream import http2

EMPTY_SETTINGS = http2.frame(http2.SETTINGS, 0, 0)
METHOD = "/test.Private/Probe"


def test_h2_holds_part_of_a_frame_until_it_has_the_whole() -> None:
    connection = H2Connection(H2Configuration(client_side=False))
    assert grpclib_private.holds_part_of_a_frame(connection)  # the client's preface is awaited
    connection.initiate_connection()
    assert grpclib_private.has_unsent_bytes(connection)
    connection.data_to_send()
    assert not grpclib_private.has_unsent_bytes(connection)
    connection.receive_data(http2.PREFACE + EMPTY_SETTINGS)
    assert not grpclib_private.holds_part_of_a_frame(connection)
    assert grpclib_private.has_unsent_bytes(connection)  # the SETTINGS acknowledgement
    connection.data_to_send()
    connection.receive_data(EMPTY_SETTINGS[:4])  # a frame cut across reads
    assert grpclib_private.holds_part_of_a_frame(connection)
    connection.receive_data(EMPTY_SETTINGS[4:])
    assert not grpclib_private.holds_part_of_a_frame(connection)
    # HEADERS without END_HEADERS: a header block awaiting its CONTINUATION.
    connection.receive_data(b"\x00\x00\x01\x01\x00\x00\x00\x00\x01\x82")
    assert grpclib_private.holds_part_of_a_frame(connection)


class RecordingProtocol(grpclib_private.ReapedProtocol):
    made: ClassVar[list[RecordingProtocol]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        RecordingProtocol.made.append(self)


class Server(grpclib_private.ProtocolServer):
    protocol_class = RecordingProtocol


class Probe:
    """One unary method whose handler looks through the accessors at its own call."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    async def probe(self, stream: grpclib.server.Stream[HealthCheckRequest, HealthCheckResponse]) -> None:
        await stream.recv_message()
        h2_stream = grpclib_private.h2_stream_of(stream)
        h2_connection = grpclib_private.h2_connection_of(h2_stream)
        assert h2_stream.id is not None
        self.seen = {
            "h2_stream": h2_stream,
            "h2_connection": h2_connection,
            "transport": grpclib_private.transport_of(h2_stream),
            "state": h2_connection.streams[h2_stream.id].state_machine.state,
        }
        await stream.send_message(HealthCheckResponse(status=HealthCheckResponse.SERVING))
        self.seen["unsent after a send"] = grpclib_private.has_unsent_bytes(h2_connection)

    def __mapping__(self) -> dict[str, Handler]:
        return {METHOD: Handler(self.probe, Cardinality.UNARY_UNARY, HealthCheckRequest, HealthCheckResponse)}


def test_grpclib_gives_the_accessors_what_they_name(tmp_path: Path) -> None:
    probe = Probe()

    async def scenario() -> None:
        server = Server([probe])
        table = grpclib_private.method_table(server)
        assert set(table) == {METHOD}
        calls: list[str] = []

        class Counting(dict[str, Handler]):
            def get(self, path: str, default: Handler | None = None) -> Handler | None:  # type: ignore[override]
                calls.append(path)
                return super().get(path, default)

        grpclib_private.set_method_table(server, Counting(table))
        socket_path = str(tmp_path / "g.sock")
        await server.start(path=socket_path)
        channel = Channel(path=socket_path)
        try:
            async with channel.request(
                METHOD, Cardinality.UNARY_UNARY, HealthCheckRequest, HealthCheckResponse
            ) as call:
                await call.send_message(HealthCheckRequest(), end=True)
                answer = await call.recv_message()
            assert answer is not None and answer.status == HealthCheckResponse.SERVING
            assert len(server._handlers) == 1  # noqa: SLF001 (the connection's handler)
            channel.close()
            # The lost connection is forgotten at once, not at the tenth one after it.
            give_up = asyncio.get_running_loop().time() + 10
            while server._handlers:  # noqa: SLF001
                assert asyncio.get_running_loop().time() < give_up, "the lost connection was never forgotten"
                await asyncio.sleep(0.01)
        finally:
            channel.close()
            server.close()
            await server.wait_closed()
        assert calls == [METHOD]  # grpclib looks methods up in the table set, with ``.get``
        assert RecordingProtocol.made, "the server's connections are not of its protocol_class"
        protocol = RecordingProtocol.made[-1]
        assert grpclib_private.connection_of(protocol) is probe.seen["h2_connection"]

    asyncio.run(scenario())
    assert isinstance(probe.seen["h2_stream"], grpclib.protocol.Stream)
    assert isinstance(probe.seen["h2_connection"], H2Connection)
    assert isinstance(probe.seen["transport"], asyncio.Transport)
    assert probe.seen["state"] in (StreamState.HALF_CLOSED_REMOTE, StreamState.OPEN)
    assert probe.seen["unsent after a send"] is False  # grpclib writes out whatever h2 makes
