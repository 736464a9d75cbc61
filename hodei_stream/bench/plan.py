"""What one benchmark run uses: the sizes (full or ``--quick``), the server, the clients."""

from __future__ import annotations

from dataclasses import dataclass, field

from hodei_stream.bench.clients import Client
from hodei_stream.bench.tools import Tools


@dataclass(frozen=True)
class Sizes:
    latency_lines: int = 1000  # at latency_rate: 10 s per client and output
    latency_rate: float = 100.0
    burst_lines: int = 1_000_000
    burst_deadline_s: float = 60.0  # per client: a slow one is stopped and its partial count shown
    slow_pipeline_deadline_s: float = 20.0  # the jq pipelines, whose pace is known to be jq's
    startup_runs: int = 7
    fanout_followers: int = 200
    fanout_rate: float = 1000.0
    fanout_seconds: float = 10.0
    load_jobs: int = 50  # each seq 1 load_lines, all queued at once
    load_lines: int = 20_000
    load_followers: int = 10
    history_lines: int = 1_000_000  # one finished job, read again by each command
    flood_streams: int = 10_000  # SubscribeLogs streams opened at once, then dropped


QUICK = Sizes(
    latency_lines=100,
    burst_lines=20_000,
    burst_deadline_s=20.0,
    slow_pipeline_deadline_s=5.0,
    startup_runs=3,
    fanout_followers=20,
    fanout_seconds=2.0,
    load_jobs=10,
    load_lines=5_000,
    load_followers=4,
    history_lines=20_000,
    flood_streams=1000,
)


@dataclass
class Plan:
    sizes: Sizes
    target: str  # the server the client-side scenarios use (a gRPC target)
    external: bool  # a user's own server (--server): nothing server-side is measured
    tools: Tools
    clients: dict[str, Client]
    skipped: dict[str, str] = field(default_factory=dict)  # client → why it cannot run here
