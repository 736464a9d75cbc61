"""Fan-out: many followers on one job writing 1,000 lines/s; all lines to all, latency, and the
embedded server's memory.

The followers are native clients in ``--record`` mode (the minimal Python client when the
native one is not built): each keeps ``<arrival_ns> <line>`` and prints it when the stream
ends, into its own file, so the benchmark reads nothing while the lines flow and what is
measured is the server.  The server is a fresh one, so its peak memory is this scenario's.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hodei_stream.bench.measure import latency_report, percentiles, recorded_lines
from hodei_stream.bench.payloads import paced_job, submit, wait_job
from hodei_stream.bench.plan import Plan
from hodei_stream.bench.report import Row
from hodei_stream.bench.servers import EmbeddedServerProcess

DRAIN_S = 30.0


def follower_argv(plan: Plan, target: str, job_id: str) -> tuple[str, list[str]]:
    if plan.tools.native_client is not None:
        return "native", [str(plan.tools.native_client), "--record", target, job_id]
    return "python-grpcio", [sys.executable, "-m", "hodei_stream.bench.minimal_client", target, job_id, "--record"]


def run(plan: Plan) -> list[Row]:
    sizes = plan.sizes
    server = None if plan.external else EmbeddedServerProcess()
    target = plan.target if server is None else server.target
    lines = int(sizes.fanout_rate * sizes.fanout_seconds)
    start_delay_s = 2.0 + sizes.fanout_followers * 0.02  # every follower subscribed first
    work = Path(tempfile.mkdtemp(prefix="hf-"))
    try:
        before_kib = server.memory_kib()[0] if server else None
        job_id = submit(target, "bench fan-out", paced_job(lines, sizes.fanout_rate, start_delay_s))
        kind, argv = follower_argv(plan, target, job_id)
        followers = []
        for number in range(sizes.fanout_followers):
            with (work / f"{number}.out").open("wb") as out:
                followers.append(
                    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL)
                )
        give_up = time.monotonic() + start_delay_s + sizes.fanout_seconds + DRAIN_S
        for follower in followers:
            try:
                follower.wait(max(0.1, give_up - time.monotonic()))
            except subprocess.TimeoutExpired:
                follower.kill()
                follower.wait()
        wait_job(target, job_id, deadline_s=DRAIN_S)
        peak_kib = server.memory_kib()[1] if server else None
        reports = [
            latency_report(recorded_lines((work / f"{n}.out").read_bytes()), lines)
            for n in range(sizes.fanout_followers)
        ]
    finally:
        if server is not None:
            server.close()
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    # Pooled over every follower's every line: the latency a user of any of them sees.
    pooled = percentiles([ns for report in reports for ns in report.latencies_ns])
    complete = sum(report.delivery.once_in_order for report in reports)
    values = {
        "complete": f"{complete}/{len(reports)}",
        "p50_ms": pooled.p50_ms if pooled else None,
        "p99_ms": pooled.p99_ms if pooled else None,
        "max_ms": pooled.max_ms if pooled else None,
        "server_mib": f"{before_kib / 1024:.0f} / {peak_kib / 1024:.0f}" if before_kib and peak_kib else None,
    }
    worst = min(reports, key=lambda report: report.delivery.received, default=None)
    note = f"{lines:,} lines at {sizes.fanout_rate:,.0f}/s to {len(reports)} {kind} followers"
    if worst is not None and not worst.delivery.once_in_order:
        note += f"; worst follower: {worst.delivery.verdict()}"
    return [Row("fanout", f"{len(reports)} followers", "", values, note)]
