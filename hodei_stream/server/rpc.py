"""The embedded server as a gRPC citizen: grpclib's server with what the ecosystem's tools expect.

- Every error answer is well-formed for grpc-go, grpc-js and grpcio: an unknown method is
  answered by a handler of ours (grpclib's own answer has no ``content-type``, which grpc-go
  reports as "Unknown: malformed header"), and every ``grpc-message`` is cut to
  ``MAX_STATUS_MESSAGE_CHARS`` once percent-encoded, here and nowhere else: hpack Huffman-codes
  that header on the event loop, in time quadratic in its length.
- A request that is not a valid protobuf message is INVALID_ARGUMENT (grpclib decodes in its
  codec and would answer UNKNOWN); one over ``MAX_REQUEST_BYTES`` is RESOURCE_EXHAUSTED before
  it is read (grpclib buffers any length); a compressed one is UNIMPLEMENTED.
- Server reflection (``grpcurl list``/``describe`` with no proto file) and the standard health
  service ``grpc.health.v1.Health``: SERVING, or NOT_SERVING while the store cannot write.
- The fan-out path, where every wake of a job is a send per subscriber and the followers
  answer with flow-control credit: ``StreamWriter`` writes a stream's already-encoded messages
  as HTTP/2 DATA frames straight to the connection, and ``ServerProtocol`` takes a read of
  nothing but WINDOW_UPDATE frames without h2's frame parsing.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import socket
from collections.abc import Callable, Collection, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

import grpclib.server
from google.protobuf.empty_pb2 import Empty
from google.protobuf.message import DecodeError
from grpclib import GRPCError, Status
from grpclib.const import Cardinality, Handler
from grpclib.encoding.proto import ProtoCodec
from grpclib.health.v1.health_grpc import HealthBase
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpclib.metadata import encode_grpc_message
from grpclib.reflection.service import ServerReflection
from grpclib.server import Stream
from h2.connection import ConnectionState
from h2.stream import StreamState
from h2.windows import LARGEST_FLOW_CONTROL_WINDOW
from multidict import MultiDict

from hodei_stream.server.grpclib_private import (
    STREAM_ID_BITS,
    ProtocolServer,
    ReapedProtocol,
    connection_of,
    h2_connection_of,
    h2_stream_of,
    has_unsent_bytes,
    holds_part_of_a_frame,
    method_table,
    set_method_table,
    transport_of,
)
from hodei_stream.server.store import JobStore
from hodei_stream.server.validation import quoted

if TYPE_CHECKING:
    from grpclib._typing import IServable

# The longest grpc-message header the server sends (percent-encoded, as on the wire);
# grpc-go and grpcio accept 8 KiB of headers by default, and 1 KiB is a long one-line message.
MAX_STATUS_MESSAGE_CHARS = 1024
# The largest request message (gRPC servers' usual default): a job definition within the
# limits of ``validation`` is well under it.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# How often a health Watch looks at the store (a change is seen within this).
HEALTH_POLL_S = 1.0

MethodFunc = Callable[[Stream[Any, Any]], Coroutine[Any, Any, None]]


def bounded_status_message(message: str) -> str:
    """``message``, or its longest prefix (ending in "…") whose percent-encoded form fits in
    ``MAX_STATUS_MESSAGE_CHARS``; never encodes more than that many characters of it."""
    if len(encode_grpc_message(message[: MAX_STATUS_MESSAGE_CHARS + 1])) <= MAX_STATUS_MESSAGE_CHARS:
        return message
    cut = MAX_STATUS_MESSAGE_CHARS - 1  # one character for the "…" (3 bytes: 9 once encoded)
    while len(encode_grpc_message(message[:cut] + "…")) > MAX_STATUS_MESSAGE_CHARS:
        cut = cut * 3 // 4
    return message[:cut] + "…"


class CrowdCollector:
    """A full garbage collection once a crowd of calls has come and gone.

    What a call holds once it ended (grpclib's stream and h2's state of it, the cancelled
    task and its frames) is mostly in reference cycles, which only Python's cyclic collector
    frees; it scans its oldest objects rarely, and a server that goes quiet after 10,000
    followers came and went would keep ~150 MiB for as long as it stays quiet.  So once
    ``COLLECT_AFTER_CALLS`` calls ended, a collection follows when no call has ended for
    ``QUIET_S`` (at most ``MAX_WAIT_S`` later), so that a flood pays for one collection.

    Python's small-object arenas (1 MiB each) go back to the system only once empty, and a
    crowd leaves some pinned by a few live blocks each.  Two kinds of these no collection
    reaches (found by walking the arenas after the bench's flood scenario), so they are
    cleared first, and the collection then empties the interpreter's own free lists:

    - grpclib's keepalive timer of each connection (due in two hours), cancelled when the
      connection closed but kept by asyncio, with its context, until due:
      ``drop_cancelled_timers``;
    - the free lists of C extensions, full of the crowd's objects: ``renew_free_lists``.

    Then ``malloc_trim(0)`` (where the C library has it): C's malloc keeps the pages it was
    given back in its arenas, and the trim hands them to the system.  After 10,000 calls
    13-18 MiB stays (17-25 MiB without the first two steps), no more after further crowds
    (they reuse it).  A server run with ``PYTHONMALLOC=malloc``, whose every object is
    malloc's, keeps ~4 MiB, at about a quarter more CPU per line stored (README:
    Configuration)."""

    COLLECT_AFTER_CALLS = 1000
    QUIET_S = 1.0
    MAX_WAIT_S = 10.0

    def __init__(self) -> None:
        self.ended = 0
        self.last_ended = 0.0
        self.since = 0.0  # when the count reached COLLECT_AFTER_CALLS
        self.collections = 0
        self.trim = malloc_trim()

    def call_ended(self) -> None:
        loop = asyncio.get_running_loop()
        self.ended += 1
        self.last_ended = loop.time()
        if self.ended == self.COLLECT_AFTER_CALLS:
            self.since = self.last_ended
            loop.call_later(self.QUIET_S, self.collect_when_quiet)

    def collect_when_quiet(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self.last_ended < self.QUIET_S and now - self.since < self.MAX_WAIT_S:
            loop.call_at(min(self.last_ended + self.QUIET_S, self.since + self.MAX_WAIT_S), self.collect_when_quiet)
            return
        self.ended = 0
        drop_cancelled_timers(loop)
        loop.call_soon(self.collect)  # once the loop's next turn has dropped them

    def collect(self) -> None:
        self.collections += 1
        renew_free_lists()
        gc.collect()  # a full collection also empties the interpreter's free lists
        if self.trim is not None:
            self.trim(0)


# asyncio takes a cancelled timer out of its heap when it is due, or at once only once the
# cancelled ones are more than half of over 100 scheduled (base_events: _run_once).
SWEEPING_TIMERS = 1000


def drop_cancelled_timers(loop: asyncio.AbstractEventLoop) -> None:
    """Have ``loop`` drop the cancelled timers it holds at its next turn, by adding
    ``SWEEPING_TIMERS`` cancelled ones (due now): the cancelled are then more than half
    while fewer than that many timers are live (one per open connection, and a few)."""
    for timer in [loop.call_later(0, lambda: None) for _ in range(SWEEPING_TIMERS)]:
        timer.cancel()


# More than any of the free lists below holds: asyncio's future iterators 255, multidict's
# MultiDicts (grpclib's metadata) 32.
FREE_LIST_RENEWAL = 1024


def renew_free_lists() -> None:
    """Refill C extensions' free lists with objects made now, freeing what they held.

    A free list takes the objects freed while it has room and gives them back, newest first,
    to be reused; no collection empties it.  So ``FREE_LIST_RENEWAL`` objects are made (the
    free list's first, then new ones) and dropped newest first: the new ones refill it and its
    former content is freed."""
    future = asyncio.get_running_loop().create_future()
    makers: tuple[Callable[[], object], ...] = (future.__await__, MultiDict)
    for make in makers:
        made = [make() for _ in range(FREE_LIST_RENEWAL)]
        while made:
            made.pop()


def malloc_trim() -> Callable[[int], int] | None:
    """The ``malloc_trim`` of the C library this process runs on, or None where it has none
    (macOS).  The process's own symbols are searched (``CDLL(None)``): no library to find."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]


def guarded(func: MethodFunc, collector: CrowdCollector) -> MethodFunc:
    """``func`` with its request bounded (``MAX_REQUEST_BYTES``), a compressed one refused,
    the message of any GRPCError it raises bounded, and its end told to ``collector``."""

    async def handle(stream: Stream[Any, Any]) -> None:
        bound_request_size(stream)
        try:
            await func(stream)
        except GRPCError as error:
            if error.message is None or (message := bounded_status_message(error.message)) is error.message:
                raise
            raise GRPCError(error.status, message, error.details) from None
        except NotImplementedError:
            # grpclib's answer to a message flagged compressed (it decompresses nothing): what
            # the gRPC spec asks of a server without the client's grpc-encoding.
            raise GRPCError(
                Status.UNIMPLEMENTED, "compressed requests are not supported (send them uncompressed)"
            ) from None
        finally:
            collector.call_ended()

    return handle


def bound_request_size(stream: Stream[Any, Any]) -> None:
    """Refuse, RESOURCE_EXHAUSTED, a request message longer than ``MAX_REQUEST_BYTES`` before
    its bytes are read: grpclib would buffer whatever length a client announces.  grpclib
    reads a message as its 5-byte prefix then ``recv_data(length)``, so the bound goes there
    (grpclib is pinned below 0.5 in pyproject.toml; tests/server/test_bad_input.py covers it)."""
    h2_stream = h2_stream_of(stream)
    buffer = h2_stream.buffer  # what grpclib's recv_data reads; not the stream: no reference cycle

    async def recv_data(size: int) -> bytes:
        if size > MAX_REQUEST_BYTES:
            raise GRPCError(
                Status.RESOURCE_EXHAUSTED, f"a request message of {size:,} bytes; at most {MAX_REQUEST_BYTES:,}"
            )
        return await buffer.read(size)

    h2_stream.recv_data = recv_data  # type: ignore[method-assign]


# DATA frames' type (0) and flags (none: the stream goes on), between length and stream id.
DATA_TYPE_AND_FLAGS = b"\x00\x00"
# h2 stream states in which a server may send DATA (the client's request has ended, or not).
SENDING_STATES = (StreamState.HALF_CLOSED_REMOTE, StreamState.OPEN)


class StreamWriter:
    """Writes whole, already-encoded gRPC messages to one server stream: as DATA frames built
    here and written to the transport at once when nothing stands in the way (``write_now``),
    else through grpclib (``write``).

    With 200 subscribers on a job, each of the job's wakes is 200 writes.  grpclib's
    ``send_data`` and h2's cost ~20 µs a write (a BytesIO, h2's state machines, a hyperframe
    ``DataFrame`` serialized, debug logging, a transport write per 16 KiB frame); a DATA frame is
    a 9-byte header, so when the stream can send, the flow-control windows hold the data
    and the transport is not paused, the frames are built here, h2's windows are charged as
    ``H2Connection.send_data`` would (so its flow control stays exact for the WINDOW_UPDATEs
    that follow), and one write carries them.  Otherwise (a full window, a paused transport, a
    closed stream) grpclib's ``send_data`` waits or raises as before.  The stream's HTTP/2
    parts are looked up once, when the stream's headers have been sent (h2 knows the stream
    from then on).  grpclib is pinned below 0.5 and h2 below 5 in pyproject.toml; tests/interop
    and tests/e2e cover this path.
    """

    def __init__(self, stream: Stream[Any, Any]) -> None:
        self.h2_stream = h2_stream_of(stream)
        self.h2_connection = h2_connection_of(self.h2_stream)
        self.connection = self.h2_stream.connection
        self.transport = transport_of(self.h2_stream)
        number = self.h2_stream.id
        self.state = self.h2_connection.streams.get(number) if number is not None else None
        self.stream_id = number.to_bytes(4, "big") if number is not None else b""

    def write_now(self, data: bytes) -> bool:
        """Write ``data`` at once if nothing stands in the way; whether it did (else nothing
        was written)."""
        h2_connection, state = self.h2_connection, self.state
        size = len(data)
        if (
            state is None
            or state.state_machine.state not in SENDING_STATES
            or h2_connection.state_machine.state is not ConnectionState.SERVER_OPEN
            or not self.connection.write_ready.is_set()
            or self.transport.is_closing()
            or size > min(h2_connection.outbound_flow_control_window, state.outbound_flow_control_window)
            or has_unsent_bytes(h2_connection)
            or not size
        ):
            return False
        frame_size = h2_connection.max_outbound_frame_size
        if size <= frame_size:
            frames = size.to_bytes(3, "big") + DATA_TYPE_AND_FLAGS + self.stream_id + data
        else:
            view = memoryview(data)
            parts: list[bytes | memoryview] = []
            for start in range(0, size, frame_size):
                chunk = view[start : start + frame_size]
                parts += (len(chunk).to_bytes(3, "big") + DATA_TYPE_AND_FLAGS + self.stream_id, chunk)
            frames = b"".join(parts)
        h2_connection.outbound_flow_control_window -= size
        state.outbound_flow_control_window -= size
        self.transport.write(frames)
        self.h2_stream.data_sent += size
        self.connection.data_sent += size
        self.connection.data_send_process()  # what grpclib's keepalive pings go by
        return True

    async def write(self, data: bytes) -> None:
        """Write ``data``: at once, or once grpclib can (it waits for credit, or raises for a
        closed stream)."""
        if not self.write_now(data):
            await self.h2_stream.send_data(data)


# A WINDOW_UPDATE frame's length (4) and type (8): the first 4 bytes of its 9-byte header.
WINDOW_UPDATE_START = b"\x00\x00\x04\x08"
WINDOW_UPDATE_BYTES = 13


# What a Unix socket's send buffer is asked to hold (the kernel doubles it, up to twice
# net.core.wmem_max; unasked, it is ~208 KiB).  A replay's pages wait there
# while the follower formats what it read, and the server writes on meanwhile instead of
# waiting for room: stream-logs' replay of 1,000,000 lines took ~8% less time, the native
# client's the same, which reads on a thread of its own (40 runs each, alternating).  TCP is
# left to the kernel, whose autotuning a size set here would switch off.
UNIX_SEND_BUFFER_BYTES = 256 * 1024


def widen_unix_send_buffer(transport: asyncio.BaseTransport) -> None:
    """Ask for ``UNIX_SEND_BUFFER_BYTES`` of send buffer if ``transport`` is a Unix socket."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family == socket.AF_UNIX:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UNIX_SEND_BUFFER_BYTES)


class ServerProtocol(ReapedProtocol):
    """grpclib's HTTP/2 connection, with a shortcut for a read that holds only WINDOW_UPDATE
    frames, what a follower sends most (a gRPC C++ follower sends one for every ~6 messages it
    reads: 25,500 of 150,000 in a fan-out run, ~25% of the server's CPU through h2's frame
    parsing, events and debug logging).  The windows are credited as h2 does, and the streams
    waiting on them woken as grpclib does; anything else (another frame, a frame cut across
    reads, a closed stream, a window overflow, a zero increment) goes the whole way through
    h2, which answers the errors.  grpclib is pinned below 0.5 and h2 below 5 in pyproject.toml."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        widen_unix_send_buffer(transport)

    def data_received(self, data: bytes) -> None:
        if not self._credited(data):
            super().data_received(data)

    def _credited(self, data: bytes) -> bool:
        """Credit ``data``'s WINDOW_UPDATE frames if that is all it holds; whether it did."""
        h2_connection = connection_of(self)
        if (
            len(data) % WINDOW_UPDATE_BYTES
            or holds_part_of_a_frame(h2_connection)
            or has_unsent_bytes(h2_connection)
            or h2_connection.state_machine.state is not ConnectionState.SERVER_OPEN
        ):
            return False
        connection_window = h2_connection.outbound_flow_control_window
        stream_windows: dict[int, int] = {}
        for start in range(0, len(data), WINDOW_UPDATE_BYTES):
            if data[start : start + 4] != WINDOW_UPDATE_START:
                return False
            stream_id = int.from_bytes(data[start + 5 : start + 9], "big") & STREAM_ID_BITS
            increment = int.from_bytes(data[start + 9 : start + 13], "big") & STREAM_ID_BITS
            if not increment:
                return False
            if not stream_id:
                connection_window += increment
                if connection_window > LARGEST_FLOW_CONTROL_WINDOW:
                    return False
                continue
            state = h2_connection.streams.get(stream_id)
            if state is None or state.state_machine.state not in SENDING_STATES:
                return False
            window = stream_windows.get(stream_id, state.outbound_flow_control_window) + increment
            if window > LARGEST_FLOW_CONTROL_WINDOW:
                return False
            stream_windows[stream_id] = window
        # All valid: credit them, and wake whoever waits for credit (grpclib's send_data).
        waiting = self.processor.streams
        if connection_window != h2_connection.outbound_flow_control_window:
            h2_connection.outbound_flow_control_window = connection_window
            for stream in waiting.values():
                stream.window_updated.set()
        for stream_id, window in stream_windows.items():
            h2_connection.streams[stream_id].outbound_flow_control_window = window
            if (waiter := waiting.get(stream_id)) is not None:
                waiter.window_updated.set()
        return True


class GrpcServer(ProtocolServer):
    """grpclib's server, its connections ``ServerProtocol``s."""

    protocol_class = ServerProtocol


async def unimplemented(path: str, stream: Stream[Empty, Empty]) -> None:
    raise GRPCError(Status.UNIMPLEMENTED, f"no method {quoted(path)} on this server")


class ServedMethods(dict[str, Handler]):
    """grpclib's table of methods (path → handler), each handler ``guarded``, and an
    UNIMPLEMENTED handler for any other path, answering as every other error does."""

    def __init__(self, methods: dict[str, Handler], collector: CrowdCollector) -> None:
        super().__init__(
            {path: handler._replace(func=guarded(handler.func, collector)) for path, handler in methods.items()}
        )

    def get(self, path: str, default: Handler | None = None) -> Handler:  # type: ignore[override]
        handler = super().get(path)
        if handler is None:
            return Handler(partial(unimplemented, path), Cardinality.UNARY_UNARY, Empty, Empty)
        return handler


class RequestCodec(ProtoCodec):
    """grpclib's protobuf codec, with an undecodable request answered INVALID_ARGUMENT."""

    def decode(self, data: bytes, message_type: Any) -> Any:
        try:
            return super().decode(data, message_type)
        except DecodeError:
            raise GRPCError(
                Status.INVALID_ARGUMENT, f"the request is not a valid {message_type.DESCRIPTOR.full_name} message"
            ) from None


class Health(HealthBase):
    """``grpc.health.v1.Health`` for the whole server ("") and each of its services: SERVING,
    or NOT_SERVING while the store cannot write (``JobStore.write_error``)."""

    def __init__(self, store: JobStore, services: Collection[str]) -> None:
        self.store = store
        self.services = {"", *services}

    def status(self, service: str) -> HealthCheckResponse.ServingStatus.ValueType:
        if service not in self.services:
            return HealthCheckResponse.SERVICE_UNKNOWN
        return HealthCheckResponse.NOT_SERVING if self.store.write_error else HealthCheckResponse.SERVING

    async def Check(self, stream: Stream[HealthCheckRequest, HealthCheckResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        if request.service not in self.services:
            raise GRPCError(Status.NOT_FOUND, f"no service {quoted(request.service)} on this server")
        await stream.send_message(HealthCheckResponse(status=self.status(request.service)))

    async def Watch(self, stream: Stream[HealthCheckRequest, HealthCheckResponse]) -> None:
        """The status now, then each change of it, until the client goes."""
        request = await stream.recv_message()
        assert request is not None
        sent = None
        while True:
            if (status := self.status(request.service)) != sent:
                await stream.send_message(HealthCheckResponse(status=status))
                sent = status
            await asyncio.sleep(HEALTH_POLL_S)


def service_names(services: Collection[IServable]) -> list[str]:
    """The gRPC service names (``package.Service``) these servicers implement."""
    return sorted({path.split("/")[1] for service in services for path in service.__mapping__()})


def grpc_server(services: Collection[IServable], store: JobStore) -> grpclib.server.Server:
    """A grpclib server for ``services``, with health, reflection and the answers above."""
    health = Health(store, service_names(services))
    server = GrpcServer(ServerReflection.extend([*services, health]), codec=RequestCodec())
    # grpclib looks methods up in this table with ``.get`` and has no hook for unknown ones
    # (tests/server/test_grpc_tooling.py covers this).
    set_method_table(server, ServedMethods(method_table(server), CrowdCollector()))
    return server
