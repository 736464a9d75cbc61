"""The benchmark's results: one ``Row`` per measurement, a table per scenario, and JSON."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

Value = float | int | str | None


@dataclass
class Row:
    scenario: str
    client: str
    output: str  # "pty", "pipe", or "" where it does not apply
    values: dict[str, Value] = field(default_factory=dict)
    note: str = ""


LATENCY_COLUMNS = [
    ("p50 ms", "p50_ms"),
    ("p90 ms", "p90_ms"),
    ("p99 ms", "p99_ms"),
    ("max ms", "max_ms"),
    ("shown live", "shown_live"),
    ("delivery", "delivery"),
]
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "latency": LATENCY_COLUMNS,
    "batching": LATENCY_COLUMNS,
    "burst": [("lines/s", "lines_per_s"), ("delivery", "delivery"), ("job s", "job_s")],
    "startup": [("median ms", "median_ms"), ("min ms", "min_ms"), ("max ms", "max_ms"), ("runs", "runs")],
    "fanout": [
        ("followers complete", "complete"),
        ("p50 ms", "p50_ms"),
        ("p99 ms", "p99_ms"),
        ("goal", "p99_goal"),
        ("max ms", "max_ms"),
        ("server RSS MiB before/peak", "server_mib"),
    ],
    "load": [
        ("lines/s", "lines_per_s"),
        ("goal", "lines_per_s_goal"),
        ("server peak RSS MiB", "peak_mib"),
        ("goal", "peak_mib_goal"),
        ("followers complete", "complete"),
        ("jobs completed", "jobs_completed"),
        ("run s", "run_s"),
        ("server CPU s", "server_cpu_s"),
    ],
    "history": [
        ("time s (median)", "time_s"),
        ("runs s", "runs_s"),
        ("goal", "time_goal"),
        ("client peak MiB", "peak_mib"),
        ("goal", "peak_goal"),
        ("store bytes per text byte", "store_ratio"),
        ("goal", "store_goal"),
    ],
    "flood": [
        ("streams open", "opened"),
        ("server RSS MiB before", "before_mib"),
        ("all open", "open_mib"),
        ("peak", "peak_mib"),
        ("all dropped", "after_mib"),
        ("kept MiB", "grown_mib"),
        ("goal", "grown_goal"),
    ],
}
TITLES = {
    "latency": "Delivery latency (job's write → line on the client's output)",
    "burst": "Burst throughput",
    "startup": "Start-up to first line (pty)",
    "fanout": "Fan-out",
    "batching": "Worker batching (stream-logs into a pipe)",
    "load": "Load (many jobs at once, their followers in one process)",
    "history": "History (one finished job's log read again, into /dev/null)",
    "flood": "Flood (streams opened on one job and dropped: the server's memory)",
}


def goal(value: float | None, relation: str, target: float, unit: str, judged: bool = True) -> str:
    """A goal as the table shows it beside the measured value: "≤ 50 ms: met".  Not ``judged``:
    the run was not of the goal's sizes (``--quick``), so it says so instead of met or missed."""
    wanted = f"{relation} {target:,g}{' ' + unit if unit else ''}"
    if not judged:
        return f"{wanted}: at full sizes only"
    if value is None:
        return wanted
    met = value <= target if relation == "≤" else value >= target
    return f"{wanted}: {'met' if met else 'missed'}"


def shown(value: Value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def table(rows: list[Row]) -> str:
    """Markdown tables, one per scenario, in the order the scenarios ran."""
    out: list[str] = []
    for scenario in dict.fromkeys(row.scenario for row in rows):
        columns = COLUMNS[scenario]
        header = ["client", "output", *(title for title, _ in columns), "note"]
        out += [f"### {TITLES[scenario]}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            if row.scenario == scenario:
                cells = [row.client, row.output or "–", *(shown(row.values.get(key)) for _, key in columns), row.note]
                out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def machine() -> dict[str, Value]:
    model = ""
    with contextlib.suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(), "python": sys.version.split()[0]}


def write_json(path: Path, rows: list[Row], settings: dict[str, object]) -> None:
    document = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(["python -m hodei_stream.bench", *sys.argv[1:]]),
        "machine": machine(),
        "settings": settings,
        "rows": [asdict(row) for row in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
