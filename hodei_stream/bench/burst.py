"""Burst throughput: a million lines as fast as they come, with a once-and-in-order check.

Two measurements:
- end to end: a job writes the lines on the embedded server (job → worker → server →
  client); the job's own duration shows whether a reader slowed it;
- the client's own limit: the native stand-in server sends the lines faster than any client
  here reads them, so each client's rate is its own.
Every client writes into a pipe the benchmark drains as fast as it can.
"""

from __future__ import annotations

import uuid

from hodei_stream.bench.capture import capture
from hodei_stream.bench.clients import Client
from hodei_stream.bench.measure import check_delivery, rate_per_s, split_lines, stamped
from hodei_stream.bench.payloads import burst_job, submit, wait_job
from hodei_stream.bench.plan import Plan
from hodei_stream.bench.report import Row, Value
from hodei_stream.bench.servers import NativeServerProcess

SLOW_PIPELINES = ("original", "original+jq-c")
JOB_DEADLINE_S = 120.0


def measure(client: Client, target: str, job_id: str, lines: int, deadline_s: float, output: str) -> Row:
    run = capture(client.argv(target, job_id), tty=False, deadline_s=deadline_s)
    arrivals = list(split_lines(run.chunks)[0])
    found = stamped(arrivals)
    delivery = check_delivery([line.index for line in found], lines)
    values: dict[str, Value] = {
        "lines_per_s": rate_per_s([a for a in arrivals if b"BENCH " in a.line]),
        "delivery": delivery.verdict(),
    }
    note = f"stopped at the {deadline_s:.0f}s deadline" if run.timed_out else ""
    return Row("burst", client.name, output, values, note)


def run(plan: Plan) -> list[Row]:
    sizes = plan.sizes
    rows = []
    # End to end, through the server the client-side scenarios use.
    for name in ("stream-logs", "native"):
        if (client := plan.clients.get(name)) is None:
            continue
        job_id = submit(plan.target, f"bench burst {name}", burst_job(sizes.burst_lines))
        row = measure(client, plan.target, job_id, sizes.burst_lines, sizes.burst_deadline_s, "pipe")
        row.client = f"{name}, end to end (job → {'your' if plan.external else 'embedded'} server)"
        row.values["job_s"] = wait_job(plan.target, job_id, JOB_DEADLINE_S)
        rows.append(row)
    if plan.tools.native_server is None:
        return rows  # no fast stand-in: the clients' own limits cannot be told from the server's
    server = NativeServerProcess(plan.tools.native_server, sizes.burst_lines)
    try:
        for client in plan.clients.values():
            deadline = sizes.slow_pipeline_deadline_s if client.name in SLOW_PIPELINES else sizes.burst_deadline_s
            row = measure(client, server.target, str(uuid.uuid4()), sizes.burst_lines, deadline, "pipe")
            row.client = f"{client.name}, own limit (native stand-in server)"
            rows.append(row)
    finally:
        server.close()
    return rows
