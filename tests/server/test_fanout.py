"""Many followers: each of them gets every line of their job once and in order while the page
each wake reads is read once and handed to every follower that is caught up, and a follower
that stops reading holds none of the others back; and once a crowd of calls has come and gone,
what they held is collected, their cancelled timers and C extensions' free lists included."""

from __future__ import annotations

import asyncio
import platform
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from multidict import MultiDict
from server_helpers import BareH2Subscription, ThreadServer

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server.rpc import CrowdCollector
from tests.conftest import wait_until

FOLLOWERS = 8
LINES = 3000
# The job waits for this file, so that every follower is subscribed before its first line;
# then it writes its lines a few at a time (a wake each, as a live job's lines come).
PACED_WRITER = """
import os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
for n in range(1, int(sys.argv[2]) + 1):
    print(f"line {n}", flush=True)
    if n % 5 == 0:
        time.sleep(0.001)
"""


def start_followers(client: HodeiClient, job_id: str) -> tuple[list[threading.Thread], list[list[int]]]:
    """``FOLLOWERS`` grpcio followers of ``job_id``, a thread each, started; the sequences
    each of them receives."""
    received: list[list[int]] = [[] for _ in range(FOLLOWERS)]

    def follow(index: int) -> None:
        request = pb.SubscribeLogsRequest(job_id=job_id, include_history=True)
        for entry in client.logs.SubscribeLogs(request, timeout=60):
            received[index].append(entry.sequence)

    followers = [threading.Thread(target=follow, args=(index,)) for index in range(FOLLOWERS)]
    for follower in followers:
        follower.start()
    return followers, received


@pytest.fixture
def tcp_server(home: Path) -> Iterator[ThreadServer]:
    server = ThreadServer(home)
    yield server
    server.close()


def test_every_follower_gets_every_line_once_in_order_from_shared_pages(
    tcp_server: ThreadServer, tmp_path: Path
) -> None:
    fanout = tcp_server.embedded.store.fanout
    go = tmp_path / "go"
    with HodeiClient(Server(tcp_server.address, embedded=False)) as client:
        job_id = client.queue_job("fan-out", "python3", ["-c", PACED_WRITER, str(go), str(LINES)])
        followers, received = start_followers(client, job_id)
        # Every follower subscribed and caught up: all parked, waiting for the job's next change.
        wait_until(
            lambda: (followers := fanout.followers.get(job_id)) is not None and len(followers.parked) >= FOLLOWERS,
            what=f"{FOLLOWERS} followers parked on the job",
        )
        go.touch()
        for follower in followers:
            follower.join(60)
        assert client.wait_final(job_id).status == pb.JOB_STATUS_COMPLETED
    assert not any(follower.is_alive() for follower in followers)
    for sequences in received:
        assert sequences == list(range(1, LINES + 1))
    # The shared path was taken: most pages went to several followers for one read of the store.
    assert fanout.pages_read > 0
    assert fanout.pages_handed >= 3 * fanout.pages_read, (fanout.pages_read, fanout.pages_handed)
    # And the fanout wrote pages to parked followers itself, without waking their tasks.
    assert fanout.pages_written > 0


def test_a_reader_that_stops_holds_back_none_of_the_caught_up_followers(
    tcp_server: ThreadServer, tmp_path: Path
) -> None:
    """One of the parked followers stops reading (a bare h2 client with 4 KiB of credit): the
    fanout's writes soon find its window full, and it is woken to wait for credit by itself.
    The others go on being written to, and get every line while it reads nothing; once it
    reads, it gets every line too, once and in order."""
    fanout = tcp_server.embedded.store.fanout
    go = tmp_path / "go"
    with HodeiClient(Server(tcp_server.address, embedded=False)) as client:
        job_id = client.queue_job("fan-out", "python3", ["-c", PACED_WRITER, str(go), str(LINES)])
        stopped = BareH2Subscription(tcp_server.address, job_id, window=4096)
        followers, received = start_followers(client, job_id)
        wait_until(
            lambda: (followers := fanout.followers.get(job_id)) is not None and len(followers.parked) >= FOLLOWERS + 1,
            what=f"{FOLLOWERS} followers and the one that stops parked on the job",
        )
        go.touch()
        for follower in followers:
            follower.join(60)
        assert not any(follower.is_alive() for follower in followers), "a stopped reader held the others back"
        assert client.wait_final(job_id).status == pb.JOB_STATUS_COMPLETED
        entries, trailers, _ = stopped.read_to_end()
    for sequences in received:
        assert sequences == list(range(1, LINES + 1))
    assert fanout.pages_written > 0
    assert trailers.get("grpc-status") == "0", trailers
    assert [entry.sequence for entry in entries] == list(range(1, LINES + 1))
    assert [entry.line for entry in entries] == [f"line {n}" for n in range(1, LINES + 1)]


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> CrowdCollector:
    """A collector whose crowd is 3 calls, collected after 50 ms without one ending."""
    monkeypatch.setattr(CrowdCollector, "COLLECT_AFTER_CALLS", 3)
    monkeypatch.setattr(CrowdCollector, "QUIET_S", 0.05)
    return CrowdCollector()


async def collected(collector: CrowdCollector, give_up: float) -> None:
    """Return once ``collector`` has collected; fail at the loop time ``give_up``."""
    loop = asyncio.get_running_loop()
    while not collector.collections:
        assert loop.time() < give_up, "no collection after the crowd"
        await asyncio.sleep(0.01)


def test_a_collection_follows_a_crowd_of_calls_once_they_stop_ending(collector: CrowdCollector) -> None:
    glibc = platform.libc_ver()[0] == "glibc"
    if glibc:
        assert collector.trim is not None, "glibc's malloc_trim was not found"
    trims: list[int] = []
    if collector.trim is not None:
        collector.trim = lambda pad: trims.append(pad) or 0

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(2):
            collector.call_ended()
        await asyncio.sleep(0.2)
        assert collector.collections == 0  # fewer calls than a crowd: nothing to collect
        began = loop.time()
        for _ in range(10):  # calls go on ending: the collection waits for them to stop
            collector.call_ended()
            await asyncio.sleep(0.01)
        assert collector.collections == 0
        await collected(collector, began + 5)
        assert loop.time() - collector.last_ended >= CrowdCollector.QUIET_S
        assert collector.collections == 1 and collector.ended == 0
        assert trims == ([0] if collector.trim is not None else [])  # C's free pages go back to the system

    asyncio.run(scenario())


def test_after_a_crowd_neither_its_cancelled_timers_nor_its_freed_objects_are_kept(collector: CrowdCollector) -> None:
    """Each of these, left, keeps a 1 MiB arena of the server's memory alive: the keepalive
    timers of the crowd's connections (cancelled, not yet due) and the objects C extensions'
    free lists took as the crowd's calls ended."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        live = asyncio.Event()
        loop.call_later(0.5, live.set)
        cancelled = cancelled_timers(loop, 50)  # fewer than asyncio sweeps out by itself
        future = loop.create_future()
        freed: list[tuple[Callable[[], object], int, set[int]]] = []
        for make, held in ((future.__await__, 255), (MultiDict, 32)):  # what each free list holds
            crowds_objects = [make() for _ in range(held)]
            freed.append((make, held, {id(thing) for thing in crowds_objects}))
            del crowds_objects  # into the free list
        for _ in range(3):
            collector.call_ended()
        await collected(collector, loop.time() + 5)
        assert [ref() for ref in cancelled] == [None] * len(cancelled)
        for make, held, addresses in freed:
            reused = [make() for _ in range(held * 3 // 4)]
            assert not addresses & {id(thing) for thing in reused}, f"the free list of {make} still held the crowd's"
        await asyncio.wait_for(live.wait(), 5)  # the timers not cancelled still fire

    asyncio.run(scenario())


def cancelled_timers(loop: asyncio.AbstractEventLoop, count: int) -> list[weakref.ref[asyncio.TimerHandle]]:
    """``count`` timers due in two hours (grpclib's keepalive), cancelled; only weakly held."""
    timers = [loop.call_later(7200, lambda: None) for _ in range(count)]
    for timer in timers:
        timer.cancel()
    return [weakref.ref(timer) for timer in timers]
