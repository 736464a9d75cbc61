"""Property tests for stream-logs' HTTP/2 side (hodei_stream/stream/http2.py), fed bytes with
no socket: any valid answer, framed and cut anyhow, decodes to the same messages; random bytes
and mangled frames end in one terminal event with a one-line status, the same wherever the
bytes are cut.  One property drives ``wire.Call`` over a real Unix socket, fewer times (each
example a socket and a thread), to hold the driver to the same answers."""

from __future__ import annotations

import gzip
import itertools
import socket
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import hpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hodei_stream.stream import http2
from hodei_stream.stream.http2 import (
    CallEnded,
    ClientConnection,
    Event,
    MessagesReceived,
    PingReceived,
    ProtocolError,
    frame,
)
from hodei_stream.stream.wire import Call

# Without I/O an example costs well under a millisecond: thousands each.
MANY = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Over a socket: every example opens one and a thread.
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENCODERS = {"identity": None, "gzip": gzip.compress, "deflate": zlib.compress}


@contextmanager
def peer(chunks: list[bytes]) -> Iterator[str]:
    """A Unix socket peer that writes ``chunks`` one by one (a short pause between them, so
    the client reads them apart), then closes; yields the target to call."""
    folder = tempfile.mkdtemp(prefix="hw-")
    path = Path(folder) / "p.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    listener.settimeout(10)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            try:
                conn.recv(65536)
                for chunk in chunks:
                    conn.sendall(chunk)
                    time.sleep(0.0003)
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(5)
                while conn.recv(65536):  # until the client hangs up
                    pass
            except OSError:
                pass  # the client failed the call and hung up first

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"unix:{path}"
    finally:
        thread.join(10)
        listener.close()
        path.unlink(missing_ok=True)
        Path(folder).rmdir()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` in pieces, cut where ``points`` (taken modulo its length) say."""
    where = sorted({point % (len(data) + 1) for point in points} | {0, len(data)})
    return [data[start:end] for start, end in itertools.pairwise(where) if end > start]


@st.composite
def header_frames(draw: st.DrawFn, headers: list[tuple[str, str]], ends_stream: bool) -> bytes:
    """``headers`` as HEADERS (maybe padded) and CONTINUATIONs cut at random points."""
    block = hpack.Encoder().encode(headers)
    pieces = cut(block, draw(st.lists(st.integers(0, 10_000), max_size=3))) or [b""]
    padding = draw(st.integers(0, 12))
    first = bytes((padding,)) + pieces[0] + b"\x00" * padding if padding else pieces[0]
    flags = (http2.END_STREAM if ends_stream else 0) | (http2.PADDED if padding else 0)
    frames = [frame(http2.HEADERS, flags | (http2.END_HEADERS if len(pieces) == 1 else 0), 1, first)]
    for index, piece in enumerate(pieces[1:], start=2):
        frames.append(frame(http2.CONTINUATION, http2.END_HEADERS if index == len(pieces) else 0, 1, piece))
    return b"".join(frames)


@st.composite
def answers(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    """A valid answer: (its messages, its bytes): headers, DATA frames that split messages
    anywhere (some padded), PINGs and SETTINGS between frames, trailers."""
    messages = draw(st.lists(st.binary(max_size=300), max_size=8))
    encoding = draw(st.sampled_from(sorted(ENCODERS)))
    encoder = ENCODERS[encoding]
    body = b""
    for payload in messages:
        if encoder and draw(st.booleans()):
            compressed = encoder(payload)
            body += b"\x01" + len(compressed).to_bytes(4, "big") + compressed
        else:
            body += b"\x00" + len(payload).to_bytes(4, "big") + payload
    headers = [(":status", "200"), ("content-type", "application/grpc")]
    if encoding != "identity":
        headers.append(("grpc-encoding", encoding))
    frames = [draw(header_frames(headers, ends_stream=False))]
    for piece in cut(body, draw(st.lists(st.integers(0, 100_000), max_size=10))):
        padding = draw(st.integers(0, 20))
        if padding:
            frames.append(frame(http2.DATA, http2.PADDED, 1, bytes((padding,)) + piece + b"\x00" * padding))
        else:
            frames.append(frame(http2.DATA, 0, 1, piece))
        if draw(st.booleans()):
            frames.append(
                draw(
                    st.sampled_from(
                        [
                            frame(http2.PING, 0, 0, b"pingpong"),
                            frame(http2.SETTINGS, 0, 0),
                            http2.window_update(0, 1000),
                            frame(0x42, 0x3, 1, b"unknown type"),
                        ]
                    )
                )
            )
    frames.append(draw(header_frames([("grpc-status", "0")], ends_stream=True)))
    return messages, b"".join(frames)


class Outcome(NamedTuple):
    """What a connection made of a script: its messages, its terminal event (None: the bytes
    ran out first, which the driver ends UNAVAILABLE when the peer closes), and the events and
    bytes it answered with."""

    messages: list[bytes]
    ending: CallEnded | ProtocolError | None
    events: list[Event]
    sent: bytes


def fed(chunks: list[bytes]) -> Outcome:
    """A fresh connection fed ``chunks`` one by one, as a driver would."""
    connection = ClientConnection("/m", b"request", authority="localhost", scheme="http", metadata=[])
    sent = connection.data_to_send()
    assert sent.startswith(http2.PREFACE)
    messages: list[bytes] = []
    ending: CallEnded | ProtocolError | None = None
    events: list[Event] = []
    for chunk in chunks:
        made = connection.receive_data(chunk)
        assert ending is None or not made, "events after the terminal one"
        for event in made:
            assert ending is None, "an event after the terminal one"
            if isinstance(event, MessagesReceived):
                assert event, "an empty MessagesReceived"
                messages += event
            elif isinstance(event, (CallEnded, ProtocolError)):
                ending = event
        events += made
        sent += connection.data_to_send()
    return Outcome(messages, ending, events, sent)


def one_line_status(ending: CallEnded | ProtocolError | None) -> None:
    if ending is not None:
        assert ending.code in http2.GRPC_CODE_NAMES
        assert ending.details and "\n" not in ending.details and "\r" not in ending.details


@MANY
@given(answer=answers(), points=st.lists(st.integers(0, 100_000), max_size=12))
def test_any_valid_answer_cut_anywhere_decodes_to_its_messages(
    answer: tuple[list[bytes], bytes], points: list[int]
) -> None:
    messages, script = answer
    outcome = fed(cut(script, points))
    assert outcome.messages == messages
    assert outcome.ending == CallEnded("OK", "ok")
    for event in outcome.events:  # every PING answered, with its payload
        if isinstance(event, PingReceived):
            assert frame(http2.PING, http2.ACK, 0, event.payload) in outcome.sent


@FEW
@given(answer=answers(), points=st.lists(st.integers(0, 100_000), max_size=12))
def test_the_driver_over_a_socket_gives_the_same_messages(answer: tuple[list[bytes], bytes], points: list[int]) -> None:
    messages, script = answer
    with peer(cut(script, points)) as target:
        call = Call(target, "/m", b"", timeout=10, keepalive_time=5)
        assert [message for batch in call.message_batches() for message in batch] == messages


@MANY
@given(noise=st.binary(max_size=2000), points=st.lists(st.integers(0, 5000), max_size=6))
def test_random_bytes_end_in_a_failed_status(noise: bytes, points: list[int]) -> None:
    outcome = fed(cut(noise, points))
    one_line_status(outcome.ending)
    assert outcome.ending is None or outcome.ending.code != "OK", "random bytes made a successful call"
    assert fed([noise]).ending == outcome.ending  # wherever the bytes are cut


@st.composite
def mangled_answers(draw: st.DrawFn) -> bytes:
    """A valid answer with bytes overwritten, cut short, or random frames of any type put in."""
    _, script = draw(answers())
    script = bytearray(script)
    for _ in range(draw(st.integers(1, 4))):
        mangle = draw(st.sampled_from(["overwrite", "truncate", "insert"]))
        where = draw(st.integers(0, len(script)))
        if mangle == "overwrite" and script:
            script[min(where, len(script) - 1)] = draw(st.integers(0, 255))
        elif mangle == "truncate":
            del script[where:]
        else:
            kind, flags, stream = draw(st.integers(0, 12)), draw(st.integers(0, 255)), draw(st.sampled_from([0, 1, 3]))
            script[where:where] = frame(kind, flags, stream, draw(st.binary(max_size=40)))
    return bytes(script)


@MANY
@given(script=mangled_answers(), points=st.lists(st.integers(0, 5000), max_size=6))
def test_mangled_frames_end_the_same_wherever_they_are_cut(script: bytes, points: list[int]) -> None:
    outcome = fed(cut(script, points))
    one_line_status(outcome.ending)
    assert fed([script]).ending == outcome.ending
