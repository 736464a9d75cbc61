"""The embedded server under load: ``python -m hodei_stream.bench.load``.

Not part of the test suite (it takes a minute and most of a machine).  It starts a real
server in a temporary state folder and runs:

1. ``--jobs`` jobs (default 50) each writing ``--lines`` lines (default 20,000) as fast as
   ``seq`` can, with ``--subscribers`` subscribers (default 100) spread over them, one of
   them slow (it sleeps ``--slow-ms`` per line): every subscriber must get every line of
   its job, in order, and the slow one must hold up neither the jobs nor the others;
2. with ``--million``, one job writing 1,000,000 lines: all stored, GetLogs pages through
   all of them, a late subscriber with include_history gets all of them.

It prints lines/s, the server's peak RSS (VmHWM) and CPU time, and each check, and exits 1
if one failed.  The subscribers share this one Python process, so "delivered" may be their
pace rather than the server's: the server's CPU time beside the run's length tells which.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hodei_stream.api import FINAL_STATUSES
from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ClientError
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.state_folder import embedded_target, is_answering

START_TIMEOUT_S = 15.0
RUN_TIMEOUT_S = 600.0


@dataclass
class Subscriber:
    job_id: str
    expected: int
    delay_s: float = 0.0
    received: int = 0
    in_order: bool = True
    error: str = ""
    finished_at: float = 0.0
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
        self.finished_at = time.monotonic()

    @property
    def complete(self) -> bool:
        return not self.error and self.in_order and self.received == self.expected


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time process ``pid`` used so far (its own threads, not children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check(ok: bool, what: str) -> bool:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
    return ok


def wait_all_final(client: HodeiClient, job_ids: list[str]) -> list[int]:
    """The jobs' final statuses, polled with ListJobs; a call that times out while the
    machine is saturated is tried again, within ``RUN_TIMEOUT_S`` in all."""
    give_up = time.monotonic() + RUN_TIMEOUT_S
    statuses: dict[str, int] = {}
    while time.monotonic() < give_up:
        try:
            listing = client.list_jobs(limit=len(job_ids) + 10)
        except ClientError as error:
            print(f"  (ListJobs: {error}; trying again)", flush=True)
            continue
        statuses = {job.job_id.value: job.status for job in listing.jobs}
        if all(statuses.get(job_id) in FINAL_STATUSES for job_id in job_ids):
            break
        time.sleep(0.1)
    return [statuses.get(job_id, pb.JOB_STATUS_PENDING) for job_id in job_ids]


def fan_out_run(server: Server, jobs: int, lines: int, subscribers: int, slow_ms: float) -> bool:
    print(f"{jobs} jobs x {lines:,} lines, {subscribers} subscribers (one reading {slow_ms} ms per line)")
    started = time.monotonic()
    with HodeiClient(server) as client:
        job_ids = [client.queue_job(f"load {n}", "seq", ["1", str(lines)]) for n in range(jobs)]
        readers = [
            Subscriber(job_ids[n % jobs], lines, delay_s=slow_ms / 1000 if n == 0 else 0.0) for n in range(subscribers)
        ]
        for reader in readers:
            reader.thread = threading.Thread(target=reader.run, args=(server,), daemon=True)
            reader.thread.start()
        finals = wait_all_final(client, job_ids)
        jobs_done = time.monotonic()
        for reader in readers[1:]:
            reader.thread.join(RUN_TIMEOUT_S)
        others_done = time.monotonic()
        readers[0].thread.join(RUN_TIMEOUT_S)
        stored = sum(len(client.get_logs(job_id, since_sequence=lines - 1).entries) for job_id in job_ids) * lines
    total = jobs * lines
    print(f"  jobs all ended after {jobs_done - started:.2f}s: {total / (jobs_done - started):,.0f} lines/s stored")
    print(
        f"  fast subscribers done after {others_done - started:.2f}s:"
        f" {sum(r.received for r in readers[1:]) / (others_done - started):,.0f} lines/s delivered"
    )
    print(f"  slow subscriber done after {readers[0].finished_at - started:.2f}s")
    ok = check(
        all(status == pb.JOB_STATUS_COMPLETED for status in finals),
        f"every job COMPLETED ({[pb.JobStatus.Name(status) for status in set(finals)]})",
    )
    ok &= check(stored == total, f"every job's last line stored ({stored // lines} of {jobs} jobs)")
    complete = sum(reader.complete for reader in readers)
    ok &= check(
        complete == subscribers, f"{complete} of {subscribers} subscribers got every line of their job in order"
    )
    for reader in readers:
        if not reader.complete:
            print(f"    {reader.job_id}: {reader.received} lines, in order: {reader.in_order} {reader.error}")
    ok &= check(
        others_done < readers[0].finished_at and jobs_done < readers[0].finished_at,
        "the slow subscriber held up neither the jobs nor the other subscribers",
    )
    return ok


def million_run(server: Server, lines: int = 1_000_000) -> bool:
    print(f"one job x {lines:,} lines")
    started = time.monotonic()
    with HodeiClient(server) as client:
        job_id = client.queue_job("million", "seq", ["1", str(lines)])
        final = client.wait_final(job_id, deadline_s=RUN_TIMEOUT_S)
        ended = time.monotonic()
        paged, last, in_order = 0, 0, True
        for entry in client.all_logs(job_id, page=5000):
            in_order &= entry.sequence == last + 1 and entry.line == str(last + 1)
            last = entry.sequence
            paged += 1
        paged_at = time.monotonic()
    late = Subscriber(job_id, lines)
    late.run(server)
    print(
        f"  stored in {ended - started:.2f}s ({lines / (ended - started):,.0f} lines/s);"
        f" GetLogs paged in {paged_at - ended:.2f}s; late subscriber read in {late.finished_at - paged_at:.2f}s"
    )
    ok = check(final.status == pb.JOB_STATUS_COMPLETED, "the job COMPLETED")
    ok &= check(paged == lines and in_order, f"GetLogs paged through {paged:,} lines in order")
    return ok & check(late.complete, f"a late subscriber with include_history got {late.received:,} lines in order")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--slow-ms", type=float, default=1.0)
    parser.add_argument("--million", action="store_true", help="also the 1,000,000-line job")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="hs-load-"))
    server = Server(embedded_target(home), embedded=True)
    with (home / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hodei_stream.server.daemon", "run"],
            env={**os.environ, "HODEI_STREAM_HOME": str(home)},
            stdout=log,
            stderr=log,
        )
    try:
        give_up = time.monotonic() + START_TIMEOUT_S
        while not is_answering(server.target):
            if process.poll() is not None or time.monotonic() > give_up:
                print("the server did not start", file=sys.stderr)
                return 1
            time.sleep(0.02)
        ok = fan_out_run(server, args.jobs, args.lines, args.subscribers, args.slow_ms)
        if args.million:
            ok &= million_run(server)
        print(f"server peak RSS: {peak_rss_mib(process.pid):.0f} MiB; server CPU: {cpu_seconds(process.pid):.1f} s")
    finally:
        process.terminate()
        process.wait(60)
        shutil.rmtree(home, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
