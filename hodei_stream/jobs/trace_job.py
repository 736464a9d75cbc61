"""``trace-job.sh JOB_ID``: follow a job that is already on the server, state by state.

It streams the job's log in the background (unless --no-logs) while polling GetJob every
--interval seconds, and prints each state as it sees it; at the end, a timeline (queued →
assigned → running → final) with the time each state began and how long the job spent in
it, then the final result with exit code and error message.  The server's own times are
used where the API has them (ListJobs' created_at, the execution's start and end times);
states it does not time (ASSIGNED) are timed when this script first saw them.
"""

from __future__ import annotations

import datetime as dt

from plumbum import cli

from hodei_stream.api import check_job_id, status_name
from hodei_stream.client import HodeiClient
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.jobs.wrapper import STATUS_POLL_S, JobScript, UsageError, aligned
from hodei_stream.proto import hodei_pb2 as pb


class TraceJob(JobScript):
    """Trace an existing Hodei job: its states with times, its logs, and how it ended."""

    PROGNAME = "trace-job.sh"
    FOREGROUND_BY_DEFAULT = False

    no_logs = cli.Flag("--no-logs", help="only the states, not the log")
    poll_interval_s = cli.SwitchAttr(
        "--interval", float, default=STATUS_POLL_S, argname="S",
        help=f"seconds between status checks (default {STATUS_POLL_S})",
    )

    def main(self, job_id: str) -> int:  # type: ignore[override]
        self.job_id = job_id
        return super().main()

    def check_usage(self) -> None:
        if self.poll_interval_s <= 0:
            raise UsageError("--interval must be more than 0 seconds")
        try:
            self.job_id = check_job_id(self.job_id)  # any case; the lowercase form from here on
        except ClientError as error:
            raise UsageError(str(error)) from None

    def run_jobs(self, client: HodeiClient) -> ExitStatus:
        job = client.get_job(self.job_id)
        name = job.job.name or "(unnamed)"
        self.timeline: dict[str, float] = {}  # status → when it began (epoch seconds)
        created = created_at(client, self.job_id)
        if created is not None:
            self.timeline["QUEUED"] = created
        self.say(f"🔎 tracing job {self.job_id} '{name}' on {client.server}, now {status_name(job.status)}")
        outcome = self.follow(client, self.job_id, name, stream_logs=not self.no_logs)
        final = client.get_job(self.job_id)
        execution = final.executions[-1] if final.executions else None
        if execution is not None and execution.HasField("start_time"):
            self.timeline["RUNNING"] = execution.start_time.ToNanoseconds() / 1e9
        if execution is not None and execution.HasField("end_time"):
            self.timeline[outcome.status] = execution.end_time.ToNanoseconds() / 1e9
        self.timeline.setdefault(outcome.status, dt.datetime.now().timestamp())
        self.print_summary(outcome, timeline_table(self.timeline))
        return outcome.exit_status

    def status_changed(self, job_id: str, job: pb.GetJobResponse) -> None:
        name = status_name(job.status)
        now = dt.datetime.now().timestamp()
        self.timeline.setdefault(name, now)
        self.say(f"[{clock(now)}] {name}" + (" (waiting for a worker)" if name in ("PENDING", "QUEUED") else ""))


def created_at(client: HodeiClient, job_id: str) -> float | None:
    """When the server queued the job (ListJobs searched by id), if it says."""
    for summary in client.list_jobs(limit=5, search_term=job_id).jobs:
        if summary.job_id.value == job_id and summary.HasField("created_at"):
            return summary.created_at.ToNanoseconds() / 1e9
    return None


def clock(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s).strftime("%H:%M:%S.%f")[:-3]


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
