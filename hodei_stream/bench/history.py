"""History: one finished job's whole log read again, by each way ``stream-logs`` offers.

The ``history`` scenario of ``python -m hodei_stream.bench``.  A job writes ``seq 1 N | sed
's/^/line number /'`` (N = 1,000,000; ``--quick`` is smaller) on a fresh embedded server (or
your own, with ``--server``), and once it is final each command reads its log into /dev/null,
``HISTORY_RUNS`` times in turn: ``--no-follow --tail 10``, ``--no-follow``, following,
``--tail 10`` following, and the native client's replay.  Each row shows the median time, the
runs, and the client's peak resident memory: GNU time's ``%M`` where ``/usr/bin/time`` is
(a child of this process would otherwise start with the benchmark's own pages counted), else
the child's ``ru_maxrss``, an upper bound.  The last row is the state folder's bytes (every
file the server keeps there, whatever the store's format) per byte of the job's text.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hodei_stream.bench.capture import stop_group
from hodei_stream.bench.clients import Client
from hodei_stream.bench.payloads import submit, wait_job
from hodei_stream.bench.plan import Plan
from hodei_stream.bench.report import Row, Value, goal
from hodei_stream.bench.servers import EmbeddedServerProcess

HISTORY_RUNS = 3
GOAL_LINES = 1_000_000  # the goals hold for a job of this many lines
TAIL_GOAL_S = 0.2
FOLLOWING_RATIO_GOAL = 1.1  # --no-follow against following; following against native
PEAK_MIB_GOAL = 32.0
STORE_RATIO_GOAL = 1.0
RUN_DEADLINE_S = 120.0
GNU_TIME = Path("/usr/bin/time")
# Files of the benchmark's, not the store's, in the server's home.
NOT_STORED = frozenset({"server.log", "server.sock"})


def history_job(lines: int) -> tuple[str, list[str]]:
    return "bash", ["-c", f"seq 1 {lines} | sed 's/^/line number /'"]


def text_bytes(lines: int) -> int:
    """The bytes the history job writes: ``line number I`` and a newline for each I."""
    digits = sum(len(str(index)) for index in range(1, lines + 1))
    return lines * len("line number \n") + digits


def store_bytes(home: Path) -> int:
    """The bytes of every file the server keeps in its home (the store, whatever its format)."""
    return sum(
        path.stat().st_size
        for path in home.rglob("*")
        if path.is_file() and not path.is_symlink() and path.name not in NOT_STORED
    )


@dataclass
class Timed:
    seconds: float
    peak_mib: float | None  # None: not measured (no GNU time here)
    status: int | None  # None: stopped at the deadline


def timed_run(argv: list[str]) -> Timed:
    """Run ``argv`` with its output into /dev/null, within ``RUN_DEADLINE_S``; its time, peak
    memory (GNU time's ``%M``, when ``/usr/bin/time`` is there) and exit status."""
    with tempfile.NamedTemporaryFile(prefix="hodei-bench-time-") as report:
        gnu_time = GNU_TIME.exists()
        command = [str(GNU_TIME), "-q", "-f", "%M", "-o", report.name, *argv] if gnu_time else argv
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own group: stopped whole at the deadline
        )
        try:
            status: int | None = process.wait(RUN_DEADLINE_S)
        except subprocess.TimeoutExpired:
            stop_group(process)
            status = None
        seconds = time.monotonic() - started
        kib = report.read().decode().split()[-1:]
    peak = int(kib[0]) / 1024 if gnu_time and status is not None and kib and kib[0].isdigit() else None
    return Timed(seconds, peak, status)


def commands(plan: Plan, target: str, job_id: str) -> dict[str, list[str]]:
    """What each row runs, by the row's name."""
    stream_logs = plan.clients["stream-logs"].argv(target, job_id)
    launcher, rest = stream_logs[:-1], stream_logs[-1:]  # the job id goes last
    rows = {
        "stream-logs --no-follow --tail 10": [*launcher, "-q", "--no-follow", "--tail", "10", *rest],
        "stream-logs --no-follow": [*launcher, "-q", "--no-follow", *rest],
        "stream-logs (following)": [*launcher, "-q", *rest],
        "stream-logs --tail 10 (following)": [*launcher, "-q", "--tail", "10", *rest],
    }
    native: Client | None = plan.clients.get("native")
    if native is not None:
        rows["native (replay)"] = native.argv(target, job_id)
    return rows


def run(plan: Plan) -> list[Row]:
    lines = plan.sizes.history_lines
    judged = lines == GOAL_LINES
    server = None if plan.external else EmbeddedServerProcess()
    try:
        target = plan.target if server is None else server.target
        job_id = submit(target, "bench history", history_job(lines))
        wait_job(target, job_id, RUN_DEADLINE_S)
        rows = commands(plan, target, job_id)
        runs: dict[str, list[Timed]] = {name: [] for name in rows}
        for _ in range(HISTORY_RUNS):  # in turn, so that a busier moment of the host falls on all rows
            for name, argv in rows.items():
                runs[name].append(timed_run(argv))
        stored = store_bytes(server.home) if server is not None else None
    finally:
        if server is not None:
            server.close()
    medians = {name: statistics.median(t.seconds for t in timed) for name, timed in runs.items()}
    following, native = medians["stream-logs (following)"], medians.get("native (replay)")
    goals: dict[str, tuple[float, float | None]] = {  # the time goal: (target s, what it is against)
        "stream-logs --no-follow --tail 10": (TAIL_GOAL_S, None),
        "stream-logs --no-follow": (FOLLOWING_RATIO_GOAL * following, following),
    }
    if native is not None:
        goals["stream-logs (following)"] = (FOLLOWING_RATIO_GOAL * native, native)
    result = []
    for name, timed in runs.items():
        peaks = [t.peak_mib for t in timed if t.peak_mib is not None]
        peak = max(peaks) if peaks else None
        values: dict[str, Value] = {
            "time_s": medians[name],
            "runs_s": " / ".join(f"{t.seconds:.2f}" for t in timed),
            "peak_mib": peak,
        }
        if name in goals:
            target_s, against = goals[name]
            unit = "s" if against is None else f"s ({FOLLOWING_RATIO_GOAL:g}× {against:.2f} s)"
            values["time_goal"] = goal(medians[name], "≤", round(target_s, 3), unit, judged)
        if name.startswith("stream-logs"):
            values["peak_goal"] = goal(peak, "≤", PEAK_MIB_GOAL, "MiB", judged)
        failed = sorted({t.status for t in timed if t.status is not None and t.status != 0})
        notes = [f"exit status {', '.join(map(str, failed))}"] if failed else []
        if any(t.status is None for t in timed):
            notes.append(f"stopped at the {RUN_DEADLINE_S:.0f}s deadline")
        note = "; ".join(notes)
        result.append(Row("history", name, "/dev/null", values, note))
    if stored is not None:
        ratio = stored / text_bytes(lines)
        values = {"store_ratio": ratio, "store_goal": goal(ratio, "≤", STORE_RATIO_GOAL, "×", judged)}
        note = f"{stored:,} bytes in the state folder for {text_bytes(lines):,} bytes of text"
        result.append(Row("history", "store (state folder after the job)", "–", values, note))
    return result
