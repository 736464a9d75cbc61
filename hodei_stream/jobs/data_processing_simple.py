"""``data_processing_simple.sh``: the ETL job or the analytics job, streamed in the foreground.

``--etl`` generates customer records, cleans them and loads them into SQLite in a work
folder that stays put (``<state home>/work/etl``); ``--analytics`` queries that database, so
it needs an ETL run first.  The work folder reaches the job through its environment.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from plumbum import cli

from hodei_stream.jobs.payload import payload_file
from hodei_stream.jobs.payloads.etl import DATABASE_NAME, WORK_DIR_ENV
from hodei_stream.jobs.usage import number_switch
from hodei_stream.jobs.wrapper import JobOutcome, JobRequest, JobScript, UsageError
from hodei_stream.state_folder import state_home

MAX_RECORDS = 10_000_000  # --records: more would take the job an hour and the database gigabytes


def etl_work_dir() -> Path:
    return state_home() / "work" / "etl"


class DataProcessingSimple(JobScript):
    """Run a data-processing job on a Hodei server and stream its log as it runs.

    --etl: generate customer records (seeded), transform them (normalise, derive fields,
    drop invalid rows) and load them into SQLite under the state folder.
    --analytics: revenue by country, top customers, monthly cohorts and tiers, queried
    from the database the last --etl run loaded.
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
        work_dir = etl_work_dir()
        env = {WORK_DIR_ENV: str(work_dir)}
        database = work_dir / DATABASE_NAME
        if self.analytics:
            return JobRequest(
                name="data-processing-analytics",
                payload=payload_file("analytics.py"),
                env=env,
                description=f"Analytics on the customers in {database}",
                tags=["data-processing", "analytics"],
            )
        return JobRequest(
            name="data-processing-etl",
            payload=payload_file("etl.py"),
            args=["--records", str(self.records)],
            env=env,
            description=f"ETL: {self.records:,} customer records into SQLite at {database}",
            tags=["data-processing", "etl"],
        )

    def summary_rows(self, outcome: JobOutcome) -> list[tuple[str, str]]:
        database = etl_work_dir() / DATABASE_NAME
        rows = [("Database", str(database))]
        # The job may have run on a remote worker: count rows only where the file is local.
        if outcome.status == "COMPLETED" and database.exists():
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
                (count,) = connection.execute("SELECT COUNT(*) FROM customers").fetchone()
            rows.append(("Rows", f"{count:,} customers"))
        return rows


def main() -> None:
    DataProcessingSimple.run()


if __name__ == "__main__":
    main()
