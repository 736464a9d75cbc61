"""A dead network path (no FIN, no RST) under the real ``stream-logs``: its keepalive PING
goes unanswered, the call ends UNAVAILABLE, the follower reconnects on a new connection and
resumes exactly.  Also a reset path (reconnects at once) and a short blip (shorter than the
keepalive: the same connection carries on).  The real embedded server, behind
``fault_proxy.FaultProxy``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server

from .fault_proxy import FaultProxy

STREAM_LOGS = Path(sys.executable).parent / "stream-logs"
LINES = 400
KEEPALIVE_S = 1.0  # HODEI_KEEPALIVE_S: a PING after 1 s of silence, UNAVAILABLE 1 s later


def cut_the_path(proxy: FaultProxy, fault: str) -> None:
    if fault == "reset":
        proxy.reset()
        return
    proxy.black_hole()
    if fault == "blip":
        time.sleep(KEEPALIVE_S / 2)  # shorter than the keepalive: nothing to notice
        proxy.resume()


@pytest.mark.parametrize("fault", ["black hole", "reset", "blip"])
def test_a_cut_path_is_noticed_and_the_stream_resumes_exactly(server: Server, fault: str) -> None:
    with HodeiClient(server) as client:
        job_id = client.queue_job(
            "numbers", "/bin/bash", ["-c", f"for i in $(seq 1 {LINES}); do echo n=$i; sleep 0.01; done"]
        )
    proxy = FaultProxy(server.target)
    env = {**os.environ, "HODEI_KEEPALIVE_S": str(KEEPALIVE_S)}
    env.pop("HODEI_GRPC_URL", None)
    process = subprocess.Popen(
        [str(STREAM_LOGS), "--server", proxy.address, "-q", "--no-timestamps", job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[tuple[float, str]] = []
    notices: list[tuple[float, str]] = []
    readers = [
        threading.Thread(
            target=lambda stream, into: into.extend((time.monotonic(), line) for line in stream), args=args, daemon=True
        )
        for args in ((process.stdout, lines), (process.stderr, notices))
    ]
    for reader in readers:
        reader.start()
    try:
        give_up = time.monotonic() + 30
        while len(lines) < 30 and time.monotonic() < give_up:
            time.sleep(0.01)
        assert len(lines) >= 30, f"no lines came through the proxy: {notices}"
        silenced = time.monotonic()
        cut_the_path(proxy, fault)
        status = process.wait(timeout=60)
    finally:
        process.kill()
        proxy.stop()
    for reader in readers:
        reader.join(10)
    numbers = [line.strip().removeprefix("[OUT] ") for _, line in lines]
    assert status == 0, notices
    assert numbers == [f"n={n}" for n in range(1, LINES + 1)]  # every line once, in order
    reconnects = [at for at, text in notices if "reconnecting" in text]
    finished = lines[-1][0] - silenced
    assert finished < 30, finished
    if fault == "blip":
        assert not reconnects, notices
        return
    assert reconnects, notices
    detected = reconnects[0] - silenced
    assert detected < 2 * KEEPALIVE_S + 3, detected
    print(f"{fault}: noticed {detected:.2f} s after the cut; last line {finished:.2f} s after it")
