"""Start-up: from starting a client to its first log line on a pseudo-terminal, median of
several runs, on a job that already ended (its lines are history, there at once)."""

from __future__ import annotations

import statistics

from hodei_stream.bench.capture import capture
from hodei_stream.bench.measure import split_lines, stamped
from hodei_stream.bench.payloads import paced_job, submit, wait_job
from hodei_stream.bench.plan import Plan
from hodei_stream.bench.report import Row, Value

RUN_DEADLINE_S = 10.0


def run(plan: Plan) -> list[Row]:
    job_id = submit(plan.target, "bench start-up", paced_job(3, 1000.0, 0.0))
    wait_job(plan.target, job_id, deadline_s=30.0)
    rows = []
    for client in plan.clients.values():
        times_ms = []
        for _ in range(plan.sizes.startup_runs):
            result = capture(
                client.argv(plan.target, job_id), tty=True, deadline_s=RUN_DEADLINE_S, first_line_only=True
            )
            first = stamped(split_lines(result.chunks)[0])
            if not first:
                break  # it shows no line at all (the original pipeline): once is enough to know
            times_ms.append((first[0].arrived_ns - result.started_ns) / 1e6)
        values: dict[str, Value] = {"runs": len(times_ms)}
        if times_ms:
            values |= {"median_ms": statistics.median(times_ms), "min_ms": min(times_ms), "max_ms": max(times_ms)}
        rows.append(
            Row("startup", client.name, "pty", values, "" if times_ms else f"no line within {RUN_DEADLINE_S:.0f}s")
        )
    return rows
