"""Many followers: each of them gets every line of their job once and in order while the page
each wake reads is read once and handed to every follower that is caught up; and once a crowd
of calls has come and gone, what they held is collected."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from server_helpers import ThreadServer

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.proto import hodei_pb2_grpc
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
    received: list[list[int]] = [[] for _ in range(FOLLOWERS)]
    with HodeiClient(Server(tcp_server.address, embedded=False)) as client:
        job_id = client.queue_job("fan-out", "python3", ["-c", PACED_WRITER, str(go), str(LINES)])

        def follow(index: int) -> None:
            request = pb.SubscribeLogsRequest(job_id=job_id, include_history=True)
            for entry in client.logs.SubscribeLogs(request, timeout=60):
                received[index].append(entry.sequence)

        followers = [threading.Thread(target=follow, args=(index,)) for index in range(FOLLOWERS)]
        for follower in followers:
            follower.start()
        # Every follower subscribed and caught up: all wait on the job's next change.
        wait_until(
            lambda: (event := fanout.events.get(job_id)) is not None and event.waiting >= FOLLOWERS,
            what=f"{FOLLOWERS} followers waiting on the job",
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
    # ... and most of them written by the wake itself, the followers' tasks left parked.
    assert fanout.written_by_wake >= fanout.pages_handed // 2, (fanout.written_by_wake, fanout.pages_handed)


def test_a_follower_that_stops_reading_is_left_behind_then_gets_every_line(
    tcp_server: ThreadServer, tmp_path: Path
) -> None:
    # Lines of 2 KiB: the stalled follower's flow-control windows fill within the job, so a
    # wake cannot write to it and resumes it; the others go on being written to.
    fanout = tcp_server.embedded.store.fanout
    go, reading = tmp_path / "go", threading.Event()
    lines = 2000
    writer = PACED_WRITER.replace('f"line {n}"', 'f"line {n} " + "x" * 2048')
    received: list[list[int]] = [[] for _ in range(FOLLOWERS)]
    with HodeiClient(Server(tcp_server.address, embedded=False)) as client:
        job_id = client.queue_job("fan-out", "python3", ["-c", writer, str(go), str(lines)])

        # The stalled one on a channel of its own that does not grow its window (BDP probes).
        stalled_channel = grpc.insecure_channel(tcp_server.address, options=[("grpc.http2.bdp_probe", 0)])
        stalled_logs = hodei_pb2_grpc.LogStreamServiceStub(stalled_channel)

        def follow(index: int) -> None:
            request = pb.SubscribeLogsRequest(job_id=job_id, include_history=True)
            logs = stalled_logs if index == 0 else client.logs
            for entry in logs.SubscribeLogs(request, timeout=60):
                received[index].append(entry.sequence)
                if index == 0 and entry.sequence == 10:
                    reading.wait(60)  # reads nothing more until the job ended

        followers = [threading.Thread(target=follow, args=(index,)) for index in range(FOLLOWERS)]
        for follower in followers:
            follower.start()
        wait_until(
            lambda: (event := fanout.events.get(job_id)) is not None and event.waiting >= FOLLOWERS,
            what=f"{FOLLOWERS} followers waiting on the job",
        )
        go.touch()
        assert client.wait_final(job_id, deadline_s=60).status == pb.JOB_STATUS_COMPLETED
        wait_until(lambda: all(len(got) == lines for got in received[1:]), timeout=30, what="the others' lines")
        assert len(received[0]) < lines  # it was left behind, and nobody waited for it
        reading.set()
        for follower in followers:
            follower.join(60)
        stalled_channel.close()
    assert not any(follower.is_alive() for follower in followers)
    for sequences in received:
        assert sequences == list(range(1, lines + 1))
    assert fanout.resumed_by_wake > 0
    assert fanout.written_by_wake > 0


def test_a_collection_follows_a_crowd_of_calls_once_they_stop_ending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CrowdCollector, "COLLECT_AFTER_CALLS", 3)
    monkeypatch.setattr(CrowdCollector, "QUIET_S", 0.05)
    collector = CrowdCollector()

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
        while not collector.collections:
            assert loop.time() - began < 5, "no collection after the crowd"
            await asyncio.sleep(0.01)
        assert loop.time() - collector.last_ended >= CrowdCollector.QUIET_S
        assert collector.collections == 1 and collector.ended == 0

    asyncio.run(scenario())
