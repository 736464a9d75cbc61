"""Worker batching: the latency run of stream-logs (into a pipe) against embedded servers whose
worker LogBatcher is set as the original platform's (capacity 100, flush 100 ms), as the seed
reconfigured it (capacity 1, flush 10 ms), and as ours ships (``ServerSettings`` defaults).

The server takes these settings at start (``hodei-server run --batch-capacity N
--batch-flush-ms MS``), so each setting runs on its own server.
"""

from __future__ import annotations

from hodei_stream.bench import latency
from hodei_stream.bench.plan import Plan
from hodei_stream.bench.report import Row
from hodei_stream.bench.servers import EmbeddedServerProcess
from hodei_stream.server.settings import ServerSettings

DEFAULTS = ServerSettings()
SETTINGS: list[tuple[str, int | None, float | None]] = [
    ("original: capacity 100, flush 100 ms", 100, 100.0),
    ("seed: capacity 1, flush 10 ms", 1, 10.0),
    (
        f"ours (defaults: capacity {DEFAULTS.batch_capacity}, flush {DEFAULTS.batch_flush_interval_s * 1000:g} ms)",
        None,
        None,
    ),
]


def run(plan: Plan) -> list[Row]:
    if plan.external:
        return []  # the batcher is the embedded server's: nothing to set on someone else's
    rows = []
    for label, capacity, flush_ms in SETTINGS:
        server = EmbeddedServerProcess(capacity, flush_ms)
        try:
            row = latency.measure(
                "batching",
                plan.clients["stream-logs"],
                server.target,
                lines=plan.sizes.latency_lines,
                rate=plan.sizes.latency_rate,
                tty=False,
            )
        finally:
            server.close()
        row.client = f"stream-logs, {label}"
        rows.append(row)
    return rows
