"""``data_processing_simple.sh``: the ETL job or the analytics job, streamed in the foreground.

``--etl`` generates customer records, cleans them and loads them into SQLite in a work
folder that stays put (``etl`` in the script's ``Workspace``: the state folder with the
embedded server, or ``--workspace``); ``--analytics`` queries that database, so it needs an
ETL run first.  Where the workers share no folder, no later job could find the database:
--analytics then builds it within its own job (the ETL's steps first, then the queries) and
says so.  The work folder reaches the job through its environment.
"""

from __future__ import annotations

import sqlite3

from plumbum import cli

from hodei_stream.jobs.payload import payload_file
from hodei_stream.jobs.payloads.etl import DATABASE_NAME, WORK_DIR_ENV
from hodei_stream.jobs.pipeline import Stage, steps_job
from hodei_stream.jobs.usage import number_switch
from hodei_stream.jobs.workspace import WorkspaceScript
from hodei_stream.jobs.wrapper import JobOutcome, JobRequest, UsageError

MAX_RECORDS = 10_000_000  # --records: more would take the job an hour and the database gigabytes
FOLDER = "etl"
ANALYTICS_ALONE_NOTICE = (
    "▶ --analytics builds its database within its own job (the ETL's steps first): the server's workers "
    "share no folder (name one with --workspace DIR to query what --etl loaded)"
)


class DataProcessingSimple(WorkspaceScript):
    """Run a data-processing job on a Hodei server and stream its log as it runs.

    --etl: generate customer records (seeded), transform them (normalise, derive fields,
    drop invalid rows) and load them into SQLite in the workspace.
    --analytics: revenue by country, top customers, monthly cohorts and tiers, queried
    from the database the last --etl run loaded (where the workers share no folder, from
    one the job loads first).
    """

    PROGNAME = "data_processing_simple.sh"
    FOREGROUND_BY_DEFAULT = True

    etl = cli.Flag("--etl", help="run the ETL job: generate, transform and load customer records")
    analytics = cli.Flag("--analytics", excludes=["--etl"], help="run the analytics job on the loaded data")
    records = number_switch(
        "--records",
        int,
        1,
        MAX_RECORDS,
        default=100_000,
        argname="N",
        requires=["--etl"],
        help="how many records the ETL job generates",
    )

    def check_usage(self) -> None:
        if not (self.etl or self.analytics):
            raise UsageError("choose a job: --etl or --analytics")

    def job_request(self) -> JobRequest:
        env = {WORK_DIR_ENV: str(self.files.folder(FOLDER))}
        database = self.files.folder(FOLDER) / DATABASE_NAME
        etl = JobRequest(
            name="data-processing-etl",
            payload=payload_file("etl.py"),
            args=["--records", str(self.records)],
            env=env,
            description=f"ETL: {self.records:,} customer records into SQLite at {database}",
            tags=["data-processing", "etl"],
        )
        analytics = JobRequest(
            name="data-processing-analytics",
            payload=payload_file("analytics.py"),
            env=env,
            description=f"Analytics on the customers in {database}",
            tags=["data-processing", "analytics"],
        )
        if not self.analytics:
            return etl
        if self.files.shared:
            return analytics
        self.say(ANALYTICS_ALONE_NOTICE)
        return steps_job(
            analytics.name,
            [Stage("etl", etl), Stage("analytics", analytics, needs=("etl",))],
            keep_going=False,
            description=f"ETL then analytics on the customers in {database}, in one job",
            tags=["data-processing", "etl", "analytics"],
        )

    def summary_rows(self, outcome: JobOutcome) -> list[tuple[str, str]]:
        path = self.files.folder(FOLDER) / DATABASE_NAME
        rows = [("Database", self.files.where(path))]
        # Count rows only where this machine has the file (not on a remote worker's own disk).
        if outcome.status == "COMPLETED" and (database := self.files.local(path)):
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
                (count,) = connection.execute("SELECT COUNT(*) FROM customers").fetchone()
            rows.append(("Rows", f"{count:,} customers"))
        return rows


def main() -> None:
    DataProcessingSimple.run()


if __name__ == "__main__":
    main()
