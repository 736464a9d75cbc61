"""The benchmark's jobs: self-contained ``python3 -c`` programs that stamp every line.

Each line is ``BENCH <index> <time.time_ns()>`` (``measure.STAMP``), written the moment its
time comes, so the job's own clock says when the line was written.  They need nothing but
python3 on the worker, so they run on a real platform's workers too (``--server``).
"""

from __future__ import annotations

from hodei_stream.api import duration_s
from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import server_at

# Waits ``start_delay_s`` (time for the clients to subscribe, so the lines measured are live
# ones, not history), then writes ``count`` lines at ``rate`` per second, each flushed.  The
# schedule is absolute (start + i/rate), so a late line does not delay the ones after it.
PACED = """\
import sys, time
count, rate, start_delay_s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
time.sleep(start_delay_s)
write, flush = sys.stdout.write, sys.stdout.flush
start = time.monotonic()
for index in range(count):
    pause = start + index / rate - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    write(f"BENCH {index} {time.time_ns()}\\n")
    flush()
"""

# ``count`` lines as fast as the job can write them: 1,000 lines per write call.
BURST = """\
import sys, time
count = int(sys.argv[1])
write = sys.stdout.write
for first in range(0, count, 1000):
    now = time.time_ns()
    write("".join(f"BENCH {index} {now}\\n" for index in range(first, min(first + 1000, count))))
sys.stdout.flush()
"""


def paced_job(count: int, rate: float, start_delay_s: float) -> tuple[str, list[str]]:
    """The command and arguments of a job writing ``count`` lines at ``rate`` lines/s."""
    return "python3", ["-u", "-c", PACED, str(count), str(rate), str(start_delay_s)]


def burst_job(count: int) -> tuple[str, list[str]]:
    return "python3", ["-c", BURST, str(count)]


def submit(target: str, name: str, job: tuple[str, list[str]]) -> str:
    """Queue a benchmark job on the server at ``target``; its id."""
    with HodeiClient(server_at(target)) as client:
        return client.queue_job(name, job[0], job[1])


def wait_job(target: str, job_id: str, deadline_s: float) -> float | None:
    """Wait (bounded) until the job ended; its duration in seconds as the server saw it."""
    with HodeiClient(server_at(target)) as client:
        job = client.wait_final(job_id, deadline_s=deadline_s)
    return duration_s(job)
