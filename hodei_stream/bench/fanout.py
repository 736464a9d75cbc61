"""Fan-out: many followers on one job writing 1,000 lines/s; all lines to all, latency, and the
embedded server's memory.

The followers share one process (``followers.py``: the native client's ``--streams`` mode,
else the minimal Python client's), each on its own connection: 200 follower processes ate
the 2 cores the server needed.  The server is a fresh one, so its peak memory is this
scenario's.  Goal (issue 13): p99 ≤ 50 ms with the server's memory bounded.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hodei_stream.bench.followers import Followers
from hodei_stream.bench.measure import latency_report, percentiles
from hodei_stream.bench.payloads import paced_job, submit, wait_job
from hodei_stream.bench.plan import Plan
from hodei_stream.bench.report import Row, goal
from hodei_stream.bench.servers import EmbeddedServerProcess

DRAIN_S = 30.0
P99_GOAL_MS = 50.0
GOAL_SIZES = (200, 1000.0)  # the goal holds for these followers at this rate (lines/s)


def run(plan: Plan) -> list[Row]:
    sizes = plan.sizes
    server = None if plan.external else EmbeddedServerProcess()
    target = plan.target if server is None else server.target
    lines = int(sizes.fanout_rate * sizes.fanout_seconds)
    start_delay_s = 2.0 + sizes.fanout_followers * 0.01  # every follower subscribed first
    work = Path(tempfile.mkdtemp(prefix="hf-"))
    try:
        before_kib = server.memory_kib()[0] if server else None
        job_id = submit(target, "bench fan-out", paced_job(lines, sizes.fanout_rate, start_delay_s))
        followers = Followers(plan.tools, sizes.fanout_followers, target, [job_id], work / "followers.out")
        followers.wait(start_delay_s + sizes.fanout_seconds + DRAIN_S)
        wait_job(target, job_id, deadline_s=DRAIN_S)
        peak_kib = server.memory_kib()[1] if server else None
        reports = [latency_report(records, lines) for records in followers.records()]
        errors = followers.errors()
    finally:
        if server is not None:
            server.close()
        shutil.rmtree(work, ignore_errors=True)
    # Pooled over every follower's every line: the latency a user of any of them sees.
    pooled = percentiles([ns for report in reports for ns in report.latencies_ns])
    complete = sum(report.delivery.once_in_order for report in reports)
    p99 = pooled.p99_ms if pooled else None
    values = {
        "complete": f"{complete}/{len(reports)}",
        "p50_ms": pooled.p50_ms if pooled else None,
        "p99_ms": p99,
        "p99_goal": goal(p99, "≤", P99_GOAL_MS, "ms", judged=(sizes.fanout_followers, sizes.fanout_rate) == GOAL_SIZES),
        "max_ms": pooled.max_ms if pooled else None,
        "server_mib": f"{before_kib / 1024:.0f} / {peak_kib / 1024:.0f}" if before_kib and peak_kib else None,
    }
    worst = min(reports, key=lambda report: report.delivery.received, default=None)
    note = f"{lines:,} lines at {sizes.fanout_rate:,.0f}/s to {len(reports)} {followers.kind} followers in one process"
    if worst is not None and not worst.delivery.once_in_order:
        note += f"; worst follower: {worst.delivery.verdict()}"
    if errors:
        note += f"; {errors.splitlines()[0]}"
    return [Row("fanout", f"{len(reports)} followers", "", values, note)]
