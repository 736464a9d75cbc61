"""``trace-job.sh JOB_ID``: follow a job that is already on the server, state by state.

It streams the job's log in the background (unless --no-logs) while polling GetJob every
--interval seconds, and prints each state as it sees it; at the end, a timeline (queued →
assigned → running → final) with the time each state began and how long the job spent in
it, then the final result with exit code and error message.  Every fact comes from GetJob
(ListJobs is never called: the Hodei platform fails it whenever the page has rows).  The
server's own times are used where GetJob has them (the execution's start and end times, and
our server's ``queued_at`` metadata); a state it does not date is dated when this script saw
it begin, and a state that had begun before the trace and that the server does not date is
"unknown" (the platform dates nothing).
"""

from __future__ import annotations

import datetime as dt
import time

from plumbum import cli

from hodei_stream.api import FINAL_STATUSES, QUEUED_AT_KEY, STATUS_NAMES, check_job_id, last_execution, status_name
from hodei_stream.client import HodeiClient
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.jobs.usage import number_switch
from hodei_stream.jobs.wrapper import STATUS_POLL_S, JobScript, UsageError
from hodei_stream.proto import hodei_pb2 as pb

UNKNOWN = "unknown"


class TraceJob(JobScript):
    """Trace an existing Hodei job: its states with times, its logs, and how it ended."""

    PROGNAME = "trace-job.sh"
    FOREGROUND_BY_DEFAULT = False
    KEEPS_STREAMED_LINES = False  # a trace explains nothing: no copy of a log that may be huge

    no_logs = cli.Flag("--no-logs", help="only the states, not the log")
    poll_interval_s = number_switch(
        "--interval", float, 0.01, 60, default=STATUS_POLL_S, argname="S", help="seconds between status checks"
    )

    def main(self, job_id: str) -> int:  # type: ignore[override]
        self.job_id = job_id
        return super().main()

    def check_usage(self) -> None:
        try:
            self.job_id = check_job_id(self.job_id)  # any case; the lowercase form from here on
        except ClientError as error:
            raise UsageError(str(error)) from None

    def run_jobs(self, client: HodeiClient) -> ExitStatus:
        job = client.get_job(self.job_id)
        name = job.job.name or "(unnamed)"
        # status → when it began (epoch seconds), None when it began before the trace, undated.
        self.timeline: dict[str, float | None] = {}
        self.status_at_start = status_name(job.status)
        self.timeline.update(server_times(job))
        self.say(f"🔎 tracing job {self.job_id} '{name}' on {client.server}, now {self.status_at_start}")
        outcome = self.follow(client, self.job_id, name, stream_logs=not self.no_logs)
        # The server's times win over the moments this script happened to see a state.
        self.timeline.update(server_times(client.get_job(self.job_id)))
        self.print_summary(outcome, timeline_table(self.timeline))
        return outcome.exit_status

    def status_changed(self, job_id: str, job: pb.GetJobResponse) -> None:
        name = status_name(job.status)
        seen_begin = None if name == self.status_at_start else time.time()
        began = server_times(job).get(name, seen_begin)
        self.timeline.setdefault(name, began)
        note = " (waiting for a worker)" if name in ("PENDING", "QUEUED") else ""
        self.say(f"[{clock(began)}] {name}{note}")


def server_times(job: pb.GetJobResponse) -> dict[str, float | None]:
    """The states GetJob itself dates: QUEUED from our server's ``queued_at``, RUNNING from the
    last execution's start, the final state from its end."""
    execution = last_execution(job)
    if execution is None:
        return {}
    times: dict[str, float | None] = {}
    if queued_at := execution.metadata.get(QUEUED_AT_KEY):
        try:
            times["QUEUED"] = dt.datetime.fromisoformat(queued_at).timestamp()
        except ValueError:
            pass  # not ours to trust: the state stays undated
    if execution.HasField("start_time"):
        times["RUNNING"] = execution.start_time.ToNanoseconds() / 1e9
    if execution.HasField("end_time") and job.status in FINAL_STATUSES:
        times[status_name(job.status)] = execution.end_time.ToNanoseconds() / 1e9
    return times


def life_order(state: str) -> int:
    """PENDING, QUEUED, ASSIGNED, RUNNING, then the final states: the order a job lives them."""
    return STATUS_NAMES.index(state) if state in STATUS_NAMES else len(STATUS_NAMES)


def clock(epoch_s: float | None) -> str:
    if epoch_s is None:
        return UNKNOWN
    return dt.datetime.fromtimestamp(epoch_s).astimezone().strftime("%H:%M:%S.%f")[:-3]  # the user's local time


def timeline_table(timeline: dict[str, float | None]) -> list[tuple[str, str, str]]:
    """One row per state, in the order of a job's life: when it began and how long until the next one."""
    states = sorted(timeline.items(), key=lambda item: life_order(item[0]))
    rows = [("state", "since", "time in state")]
    for index, (state, began) in enumerate(states):
        if index + 1 == len(states):
            spent = "(final)"  # the trace ends when the job does
        else:
            following = states[index + 1][1]
            spent = f"{following - began:.3f}s" if began is not None and following is not None else UNKNOWN
        rows.append((state, clock(began), spent))
    return rows


def main() -> None:
    TraceJob.run()


if __name__ == "__main__":
    main()
