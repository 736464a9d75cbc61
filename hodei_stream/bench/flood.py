"""Flood: many SubscribeLogs streams opened on one running job and dropped; the embedded
server's resident memory before, with every stream open, and once they are all gone.

The streams are grpcio's asyncio calls, ``STREAMS_PER_CONNECTION`` on each connection (a
channel of its own, not grpcio's shared one), so that the server holds thousands of
connections and streams at once, as a crowd of followers would.  Each stream is counted open
once its headers came; then every call is cancelled and every channel closed.  "Reaped" is
the server holding no more file descriptors than before the flood.  Goal: its memory comes
back within ``RETURN_GOAL_MIB`` of where it was.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import grpc.aio

from hodei_stream.bench.payloads import submit
from hodei_stream.bench.plan import Plan
from hodei_stream.bench.report import Row, Value, goal
from hodei_stream.bench.servers import EmbeddedServerProcess
from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import server_at
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.proto import hodei_pb2_grpc

STREAMS_PER_CONNECTION = 100  # the server's (h2's) default limit of concurrent streams
RETURN_GOAL_MIB = 20.0
OPEN_DEADLINE_S = 120.0
REAP_DEADLINE_S = 30.0
# After the last descriptor closed, how long the memory is left to settle (the server
# collects what the calls held once none has ended for a second) before it is read.
SETTLE_S = 3.0
# The followed job: some history for each stream to read, then silence while it runs.
HISTORY_LINES = 100
HISTORY_JOB = ("/bin/sh", ["-c", f"seq 1 {HISTORY_LINES}; sleep 600"])


async def open_and_drop(target: str, job_id: str, streams: int, on_open: Callable[[], None]) -> int:
    """Open ``streams`` SubscribeLogs calls on ``job_id``, call ``on_open()`` once every one of
    them has its headers, then cancel them and close their connections; how many opened."""
    connections = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(-(-streams // STREAMS_PER_CONNECTION))
    ]
    request = pb.SubscribeLogsRequest(job_id=job_id, include_history=True)
    calls = [
        hodei_pb2_grpc.LogStreamServiceStub(connections[index // STREAMS_PER_CONNECTION]).SubscribeLogs(request)
        for index in range(streams)
    ]
    try:
        answered = await asyncio.wait_for(
            asyncio.gather(*(call.initial_metadata() for call in calls), return_exceptions=True), OPEN_DEADLINE_S
        )
        opened = sum(not isinstance(result, BaseException) for result in answered)
        on_open()
    finally:
        for call in calls:
            call.cancel()
        await asyncio.gather(*(connection.close() for connection in connections))
    return opened


def wait_history(target: str, job_id: str) -> None:
    """Return once the job wrote its history (the server's own descriptors are all open)."""
    give_up = time.monotonic() + OPEN_DEADLINE_S
    with HodeiClient(server_at(target)) as client:
        while sum(1 for _ in client.all_logs(job_id)) < HISTORY_LINES and time.monotonic() < give_up:
            time.sleep(0.05)


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def run(plan: Plan) -> list[Row]:
    if plan.external:
        return []  # the server's memory is what this measures: only the embedded one's
    streams = plan.sizes.flood_streams
    server = EmbeddedServerProcess()
    try:
        job_id = submit(server.target, "bench flood", HISTORY_JOB)
        wait_history(server.target, job_id)
        before_kib = server.memory_kib()[0]
        descriptors = open_descriptors(server.process.pid)
        open_kib: list[int] = []
        opened = asyncio.run(
            open_and_drop(server.target, job_id, streams, lambda: open_kib.append(server.memory_kib()[0]))
        )
        give_up = time.monotonic() + REAP_DEADLINE_S
        while open_descriptors(server.process.pid) > descriptors and time.monotonic() < give_up:
            time.sleep(0.1)
        reaped = open_descriptors(server.process.pid) <= descriptors
        time.sleep(SETTLE_S)
        after_kib = server.memory_kib()[0]
        peak_kib = server.memory_kib()[1]
    finally:
        server.close()
    grown_mib = (after_kib - before_kib) / 1024
    values: dict[str, Value] = {
        "opened": f"{opened:,}/{streams:,}",
        "before_mib": before_kib / 1024,
        "open_mib": open_kib[0] / 1024 if open_kib else None,
        "peak_mib": peak_kib / 1024,
        "after_mib": after_kib / 1024,
        "grown_mib": grown_mib,
        "grown_goal": goal(grown_mib, "≤", RETURN_GOAL_MIB, "MiB", judged=streams >= 10_000),
    }
    note = f"{STREAMS_PER_CONNECTION} streams a connection, all open at once, then cancelled and closed"
    if not reaped:
        note += f"; the server still held more descriptors than before after {REAP_DEADLINE_S:.0f} s"
    return [Row("flood", f"{streams:,} streams", "", values, note)]
