"""Load: many jobs queued at once, each writing as fast as ``seq`` can, with followers.

The ``load`` scenario of ``python -m hodei_stream.bench`` (issue 13: 50 jobs × ``seq 1
20000``, 10 followers; ``--quick`` is smaller), and standalone::

    python -m hodei_stream.bench.load [--jobs 50 --lines 20000 --followers 10 --slow-ms 1] [--million]

Against a fresh embedded server: the jobs are queued at once, and the followers (one process,
``followers.py``, follower i on job i) follow them with include_history.  Measured: lines/s
from the first QueueJob until every job is final and every follower has every line of its job
(the later of the jobs' end times as the server recorded them and the followers' last
arrival), once and in order; the server's peak RSS (VmHWM); its CPU time.

The standalone tool adds a slow subscriber (``--slow-ms`` per line, a grpcio thread in the
tool's process) that must hold up neither the jobs nor the followers, and with ``--million``
one job writing 1,000,000 lines: all stored, GetLogs pages through them, a late
include_history subscriber gets them all.  It prints each check and exits 1 if one failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hodei_stream.api import FINAL_STATUSES
from hodei_stream.bench import tools
from hodei_stream.bench.followers import Followers
from hodei_stream.bench.measure import Delivery, check_delivery
from hodei_stream.bench.plan import Plan
from hodei_stream.bench.report import Row, Value, goal
from hodei_stream.bench.servers import EmbeddedServerProcess
from hodei_stream.bench.tools import Tools
from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server, server_at
from hodei_stream.exit_codes import ClientError
from hodei_stream.proto import hodei_pb2 as pb

LINES_PER_S_GOAL = 150_000
PEAK_MIB_GOAL = 128
GOAL_SIZES = (50, 20_000, 10)  # the goals hold for these jobs, lines per job, followers
RUN_TIMEOUT_S = 600.0


@dataclass
class Subscriber:
    """A grpcio subscriber on a thread of this process (the slow one, the late one)."""

    job_id: str
    expected: int
    delay_s: float = 0.0
    received: int = 0
    in_order: bool = True
    error: str = ""
    finished_ns: int = 0
    thread: threading.Thread = field(init=False)

    def run(self, server: Server) -> None:
        try:
            with HodeiClient(server) as client:
                request = pb.SubscribeLogsRequest(job_id=self.job_id, include_history=True)
                for entry in client.logs.SubscribeLogs(request, timeout=RUN_TIMEOUT_S):
                    self.received += 1
                    if entry.sequence != self.received or entry.line != str(self.received):
                        self.in_order = False
                    if self.delay_s:
                        time.sleep(self.delay_s)
        except Exception as error:  # noqa: BLE001 - reported as a failed check
            self.error = f"{type(error).__name__}: {error}"
        self.finished_ns = time.time_ns()

    def start(self, server: Server) -> None:
        self.thread = threading.Thread(target=self.run, args=(server,), daemon=True)
        self.thread.start()

    @property
    def complete(self) -> bool:
        return not self.error and self.in_order and self.received == self.expected


@dataclass
class LoadResult:
    jobs: int
    lines: int  # per job
    run_s: float  # first QueueJob → every job final and every follower done
    done_ns: int  # when that was (time.time_ns)
    jobs_ended_s: float  # first QueueJob → the last job's end as the server recorded it
    statuses: list[int]
    deliveries: list[Delivery]  # one per follower
    follower_kind: str
    follower_errors: str
    slow: Subscriber | None

    @property
    def lines_per_s(self) -> float:
        return self.jobs * self.lines / self.run_s if self.run_s > 0 else 0.0

    @property
    def complete(self) -> int:
        return sum(delivery.once_in_order for delivery in self.deliveries)

    @property
    def completed(self) -> int:
        return sum(status == pb.JOB_STATUS_COMPLETED for status in self.statuses)


def final_jobs(client: HodeiClient, job_ids: list[str], give_up: float) -> dict[str, pb.JobSummary]:
    """The jobs' summaries once every one is final (or at ``give_up``, monotonic), polled with
    ListJobs; a call that times out while the machine is saturated is tried again."""
    wanted = set(job_ids)
    summaries: dict[str, pb.JobSummary] = {}
    while time.monotonic() < give_up:
        try:
            listing = client.list_jobs(limit=len(job_ids) + 10)
        except ClientError:
            continue
        summaries = {job.job_id.value: job for job in listing.jobs if job.job_id.value in wanted}
        if len(summaries) == len(wanted) and all(job.status in FINAL_STATUSES for job in summaries.values()):
            break
        time.sleep(0.2)
    return summaries


def load_run(
    target: str, found: Tools, work: Path, *, jobs: int, lines: int, followers: int, slow_ms: float = 0.0
) -> LoadResult:
    """Queue ``jobs`` jobs of ``seq 1 lines`` at once, follow the first ``followers`` of them
    (and, with ``slow_ms``, one more slowly), wait until all is done; what happened."""
    server = server_at(target)
    give_up = time.monotonic() + RUN_TIMEOUT_S
    with HodeiClient(server) as client:
        started_ns = time.time_ns()
        job_ids = [client.queue_job(f"load {n}", "seq", ["1", str(lines)]) for n in range(jobs)]
        slow = Subscriber(job_ids[-1], lines, delay_s=slow_ms / 1000) if slow_ms > 0 else None
        if slow is not None:
            slow.start(server)
        readers = Followers(found, followers, target, job_ids[:followers], work / "followers.out")
        readers.wait(give_up - time.monotonic())
        summaries = final_jobs(client, job_ids, give_up)
    if slow is not None:
        slow.thread.join(max(0.1, give_up - time.monotonic()))
    records = readers.records()
    deliveries = [check_delivery([int(arrival.line) - 1 for arrival in kept], lines) for kept in records]
    ended_ns = max(
        (job.completed_at.seconds * 1_000_000_000 + job.completed_at.nanos for job in summaries.values()), default=0
    )
    done_ns = max(ended_ns, max((kept[-1].arrived_ns for kept in records if kept), default=0))
    return LoadResult(
        jobs=jobs,
        lines=lines,
        run_s=(done_ns - started_ns) / 1e9,
        done_ns=done_ns,
        jobs_ended_s=(ended_ns - started_ns) / 1e9,
        statuses=[summaries[job_id].status if job_id in summaries else pb.JOB_STATUS_PENDING for job_id in job_ids],
        deliveries=deliveries,
        follower_kind=readers.kind,
        follower_errors=readers.errors(),
        slow=slow,
    )


def run(plan: Plan) -> list[Row]:
    """The bench scenario: one load run on a fresh embedded server (or on ``--server``)."""
    sizes = plan.sizes
    server = None if plan.external else EmbeddedServerProcess()
    work = Path(tempfile.mkdtemp(prefix="hl-"))
    try:
        result = load_run(
            plan.target if server is None else server.target,
            plan.tools,
            work,
            jobs=sizes.load_jobs,
            lines=sizes.load_lines,
            followers=sizes.load_followers,
        )
        peak_mib = server.memory_kib()[1] / 1024 if server else None
        cpu_s = server.cpu_s() if server else None
    finally:
        if server is not None:
            server.close()
        shutil.rmtree(work, ignore_errors=True)
    judged = (sizes.load_jobs, sizes.load_lines, sizes.load_followers) == GOAL_SIZES
    values: dict[str, Value] = {
        "lines_per_s": result.lines_per_s,
        "lines_per_s_goal": goal(result.lines_per_s, "≥", LINES_PER_S_GOAL, "", judged),
        "peak_mib": peak_mib,
        "peak_mib_goal": goal(peak_mib, "≤", PEAK_MIB_GOAL, "MiB", judged),
        "complete": f"{result.complete}/{len(result.deliveries)}",
        "jobs_completed": f"{result.completed}/{result.jobs}",
        "run_s": result.run_s,
        "server_cpu_s": cpu_s,
    }
    note = (
        f"{result.jobs} jobs × seq 1 {result.lines} ({result.jobs * result.lines:,} lines),"
        f" {len(result.deliveries)} {result.follower_kind} followers in one process"
    )
    worst = min(result.deliveries, key=lambda delivery: delivery.received, default=None)
    if worst is not None and not worst.once_in_order:
        note += f"; worst follower: {worst.verdict()}"
    if result.follower_errors:
        note += f"; {result.follower_errors.splitlines()[0]}"
    return [Row("load", f"{result.jobs} jobs, {len(result.deliveries)} followers", "", values, note)]


def check(ok: bool, what: str) -> bool:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
    return ok


def report(result: LoadResult) -> bool:
    """The standalone tool's account of a load run: figures, then each check."""
    print(f"  jobs all ended after {result.jobs_ended_s:.2f}s")
    print(f"  every job final and every follower done after {result.run_s:.2f}s: {result.lines_per_s:,.0f} lines/s")
    ok = check(
        result.completed == result.jobs,
        f"every job COMPLETED ({sorted({pb.JobStatus.Name(status) for status in result.statuses})})",
    )
    ok &= check(
        result.complete == len(result.deliveries),
        f"{result.complete} of {len(result.deliveries)} followers got every line of their job once, in order"
        + (f" ({result.follower_errors.splitlines()[0]})" if result.follower_errors else ""),
    )
    if (slow := result.slow) is not None:
        ok &= check(slow.complete, f"the slow subscriber got every line in order ({slow.received:,} {slow.error})")
        ok &= check(result.done_ns < slow.finished_ns, "the slow subscriber held up neither the jobs nor the followers")
    return ok


def million_run(server: Server, lines: int = 1_000_000) -> bool:
    print(f"one job x {lines:,} lines")
    started = time.monotonic()
    with HodeiClient(server) as client:
        job_id = client.queue_job("million", "seq", ["1", str(lines)])
        final = client.wait_final(job_id, deadline_s=RUN_TIMEOUT_S)
        ended = time.monotonic()
        paged, last, in_order = 0, 0, True
        for entry in client.all_logs(job_id, page_lines=5000):
            in_order &= entry.sequence == last + 1 and entry.line == str(last + 1)
            last = entry.sequence
            paged += 1
        paged_at = time.monotonic()
    late = Subscriber(job_id, lines)
    late.run(server)
    print(
        f"  stored in {ended - started:.2f}s ({lines / (ended - started):,.0f} lines/s);"
        f" GetLogs paged in {paged_at - ended:.2f}s; late subscriber read in {time.monotonic() - paged_at:.2f}s"
    )
    ok = check(final.status == pb.JOB_STATUS_COMPLETED, "the job COMPLETED")
    ok &= check(paged == lines and in_order, f"GetLogs paged through {paged:,} lines in order")
    return ok & check(late.complete, f"a late subscriber with include_history got {late.received:,} lines in order")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--followers", type=int, default=10)
    parser.add_argument("--slow-ms", type=float, default=1.0, help="one more subscriber, this slow per line (0: none)")
    parser.add_argument("--million", action="store_true", help="also the 1,000,000-line job")
    args = parser.parse_args(argv)
    server = EmbeddedServerProcess()
    work = Path(tempfile.mkdtemp(prefix="hl-"))
    try:
        print(f"{args.jobs} jobs x {args.lines:,} lines, {args.followers} followers", flush=True)
        result = load_run(
            server.target,
            tools.locate(),
            work,
            jobs=args.jobs,
            lines=args.lines,
            followers=args.followers,
            slow_ms=args.slow_ms,
        )
        ok = report(result)
        if args.million:
            ok &= million_run(server_at(server.target))
        print(f"server peak RSS: {server.memory_kib()[1] / 1024:.0f} MiB; server CPU: {server.cpu_s():.1f} s")
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
