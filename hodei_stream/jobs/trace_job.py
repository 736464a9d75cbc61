"""``trace-job.sh JOB_ID``: follow a job that is already on the server, state by state.

It streams the job's log in the background (unless --no-logs) while polling GetJob every
--interval seconds, and prints each state as it sees it; at the end, a timeline (queued →
assigned → running → final) with the time each state began and how long the job spent in
it, then the final result with exit code and error message.  The server's own times are
used where the API has them (ListJobs' created_at and completed_at, the execution's start and
end times);
states it does not time (ASSIGNED) are timed when this script first saw them.
"""

from __future__ import annotations

import datetime as dt
import time

from plumbum import cli

from hodei_stream.api import FINAL_STATUSES, check_job_id, status_name
from hodei_stream.client import HodeiClient
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.jobs.usage import number_switch
from hodei_stream.jobs.wrapper import STATUS_POLL_S, JobScript, UsageError, aligned
from hodei_stream.proto import hodei_pb2 as pb


class TraceJob(JobScript):
    """Trace an existing Hodei job: its states with times, its logs, and how it ended."""

    PROGNAME = "trace-job.sh"
    FOREGROUND_BY_DEFAULT = False

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
        self.timeline: dict[str, float] = {}  # status → when it began (epoch seconds)
        listed = job_summary(client, self.job_id)
        if listed is not None and listed.HasField("created_at"):
            self.timeline["QUEUED"] = listed.created_at.ToNanoseconds() / 1e9
        self.say(f"🔎 tracing job {self.job_id} '{name}' on {client.server}, now {status_name(job.status)}")
        outcome = self.follow(client, self.job_id, name, stream_logs=not self.no_logs)
        # The server's times win over the moments this script happened to see a state.
        dated = server_times(client.get_job(self.job_id))
        self.timeline.update(dated)
        if outcome.status not in dated:
            # No execution end time (e.g. cancelled while queued): ListJobs' completed_at, if any.
            listed = job_summary(client, self.job_id)
            if listed is not None and listed.HasField("completed_at"):
                self.timeline[outcome.status] = listed.completed_at.ToNanoseconds() / 1e9
        self.print_summary(outcome, timeline_table(self.timeline))
        return outcome.exit_status

    def status_changed(self, job_id: str, job: pb.GetJobResponse) -> None:
        name = status_name(job.status)
        began = server_times(job).get(name, time.time())
        self.timeline.setdefault(name, began)
        self.say(f"[{clock(began)}] {name}" + (" (waiting for a worker)" if name in ("PENDING", "QUEUED") else ""))


def server_times(job: pb.GetJobResponse) -> dict[str, float]:
    """The states GetJob itself dates: RUNNING from the last execution's start, the final state from its end."""
    execution = job.executions[-1] if job.executions else None
    times: dict[str, float] = {}
    if execution is not None and execution.HasField("start_time"):
        times["RUNNING"] = execution.start_time.ToNanoseconds() / 1e9
    if execution is not None and execution.HasField("end_time") and job.status in FINAL_STATUSES:
        times[status_name(job.status)] = execution.end_time.ToNanoseconds() / 1e9
    return times


def job_summary(client: HodeiClient, job_id: str) -> pb.JobSummary | None:
    """The job's row in ListJobs (searched by id): when the server queued and finished it."""
    for summary in client.list_jobs(limit=5, search_term=job_id).jobs:
        if summary.job_id.value == job_id:
            return summary
    return None


def clock(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s).astimezone().strftime("%H:%M:%S.%f")[:-3]  # the user's local time


def timeline_table(timeline: dict[str, float]) -> list[str]:
    """One row per state, in time order: when it began and how long until the next one."""
    states = sorted(timeline.items(), key=lambda item: item[1])
    rows = [("state", "since", "time in state")]
    for index, (state, began) in enumerate(states):
        spent = f"{states[index + 1][1] - began:.3f}s" if index + 1 < len(states) else "(final)"
        rows.append((state, clock(began), spent))
    return aligned(rows)


def main() -> None:
    TraceJob.run()


if __name__ == "__main__":
    main()
