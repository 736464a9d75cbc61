"""``data_processing_simple.sh``: the ETL job, streamed in the foreground.

``--etl`` generates customer records, cleans them and loads them into SQLite in a work
folder that stays put (``<state home>/work/etl``), so later jobs find the database there.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from plumbum import cli

from hodei_stream.jobs.payload import payload_file
from hodei_stream.jobs.payloads.etl import DATABASE_NAME, WORK_DIR_ENV
from hodei_stream.jobs.wrapper import JobOutcome, JobRequest, JobScript
from hodei_stream.servers import state_home


def etl_work_dir() -> Path:
    return state_home() / "work" / "etl"


class DataProcessingSimple(JobScript):
    """Run a data-processing job on a Hodei server and stream its log as it runs.

    --etl: generate customer records (seeded), transform them (normalise, derive fields,
    drop invalid rows) and load them into SQLite under the state folder.
    """

    PROGNAME = "data_processing_simple.sh"
    FOREGROUND_BY_DEFAULT = True

    etl = cli.Flag("--etl", mandatory=True, help="run the ETL job: generate, transform and load customer records")
    records = cli.SwitchAttr(
        "--records", cli.Range(1, 10_000_000), default=100_000, argname="N", help="how many records to generate"
    )

    def job_request(self) -> JobRequest:
        work_dir = etl_work_dir()
        return JobRequest(
            name="data-processing-etl",
            payload=payload_file("etl.py"),
            args=["--records", str(self.records)],
            env={WORK_DIR_ENV: str(work_dir)},
            description=f"ETL: {self.records:,} customer records into SQLite at {work_dir / DATABASE_NAME}",
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
