"""Delivery latency: a job writes stamped lines at a steady rate; every client follows it under
a pseudo-terminal and into a pipe; latency is arrival − written, per line."""

from __future__ import annotations

from hodei_stream.bench.capture import capture
from hodei_stream.bench.clients import Client
from hodei_stream.bench.measure import latency_report, split_lines
from hodei_stream.bench.payloads import paced_job, submit, wait_job
from hodei_stream.bench.plan import Plan
from hodei_stream.bench.report import Row

# Time for a client to start and subscribe before the first line: lines measured are live.
START_DELAY_S = 1.5
# After the job's last line: how long a client may still take before it is stopped.
DRAIN_S = 10.0


def measure(scenario: str, client: Client, target: str, *, lines: int, rate: float, tty: bool) -> Row:
    job_id = submit(target, f"bench {scenario} {client.name}", paced_job(lines, rate, START_DELAY_S))
    run = capture(client.argv(target, job_id), tty=tty, deadline_s=START_DELAY_S + lines / rate + DRAIN_S)
    wait_job(target, job_id, deadline_s=DRAIN_S)  # the next run starts on a quiet machine
    arrivals, _ = split_lines(run.chunks)
    report = latency_report(arrivals, lines)
    latency = report.latency
    values = {
        "p50_ms": latency.p50_ms if latency else None,
        "p90_ms": latency.p90_ms if latency else None,
        "p99_ms": latency.p99_ms if latency else None,
        "max_ms": latency.max_ms if latency else None,
        "shown_live": f"{report.shown_before_last_write:.0%}",
        "delivery": report.delivery.verdict(),
    }
    note = f"stopped {DRAIN_S:.0f}s after the job's last line" if run.timed_out else ""
    return Row(scenario, client.name, "pty" if tty else "pipe", values, note)


def run(plan: Plan) -> list[Row]:
    sizes = plan.sizes
    return [
        measure("latency", client, plan.target, lines=sizes.latency_lines, rate=sizes.latency_rate, tty=tty)
        for client in plan.clients.values()
        for tty in (True, False)
    ]
