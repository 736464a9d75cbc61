"""A dead network path (no FIN, no RST) under the real ``stream-logs``: its keepalive PING
goes unanswered, the call ends UNAVAILABLE, the follower reconnects on a new connection and
resumes exactly.  The real embedded server, behind ``fault_proxy.FaultProxy``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server

from .fault_proxy import FaultProxy

STREAM_LOGS = Path(sys.executable).parent / "stream-logs"
LINES = 400
KEEPALIVE_S = 1.0  # HODEI_KEEPALIVE_S: a PING after 1 s of silence, UNAVAILABLE 1 s later


def test_a_black_holed_path_is_noticed_and_the_stream_resumes_exactly(server: Server) -> None:
    with HodeiClient(server) as client:
        job_id = client.queue_job("numbers", "/bin/bash", ["-c", f"for i in $(seq 1 {LINES}); do echo n=$i; sleep 0.01; done"])
    proxy = FaultProxy(server.target)
    env = {**os.environ, "HODEI_KEEPALIVE_S": str(KEEPALIVE_S)}
    env.pop("HODEI_GRPC_URL", None)
    process = subprocess.Popen([str(STREAM_LOGS), "--server", proxy.address, "-q", "--no-timestamps", job_id],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[tuple[float, str]] = []
    notices: list[tuple[float, str]] = []
    readers = [threading.Thread(target=lambda stream, into: into.extend((time.monotonic(), line) for line in stream),
                                args=args, daemon=True) for args in ((process.stdout, lines), (process.stderr, notices))]
    for reader in readers:
        reader.start()
    try:
        give_up = time.monotonic() + 30
        while len(lines) < 30 and time.monotonic() < give_up:
            time.sleep(0.01)
        assert len(lines) >= 30, f"no lines came through the proxy: {notices}"
        proxy.black_hole()
        silenced = time.monotonic()
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
    assert reconnects, notices
    detected, finished = reconnects[0] - silenced, lines[-1][0] - silenced
    assert detected < 2 * KEEPALIVE_S + 3 and finished < 30, (detected, finished)
    print(f"dead path noticed {detected:.2f} s after the silence; last line {finished:.2f} s after it")
