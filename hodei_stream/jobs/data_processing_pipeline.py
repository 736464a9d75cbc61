"""``data_processing_pipeline.sh``: ingest → transform → validate → load → report, one job per stage.

Every stage runs ``payloads/data_pipeline.py`` (with the ETL and analytics payloads in its
bundle, for their rules and queries) in one work folder, ``data-pipeline`` in the script's
``Workspace`` (the state folder with the embedded server, or ``--workspace``; where the
workers share no folder, the stages are the steps of one job); a failed validation stops
the pipeline with its reason (see ``hodei_stream.jobs.pipeline``).
The ingest stage clears what an earlier run left there, and the summary names only the files
this run's stages made.
"""

from __future__ import annotations

from collections.abc import Collection

from hodei_stream.jobs.data_processing_simple import MAX_RECORDS
from hodei_stream.jobs.payload import payload_file
from hodei_stream.jobs.payloads.etl import DATABASE_NAME
from hodei_stream.jobs.pipeline import PipelineScript, Stage
from hodei_stream.jobs.usage import number_switch
from hodei_stream.jobs.wrapper import JobRequest

STAGES = ("ingest", "transform", "validate", "load", "report")


class DataProcessingPipeline(PipelineScript):
    """Run a data pipeline on a Hodei server: each stage its own job, sharing one work folder.

    ingest (raw customer records as CSV) → transform (clean them) → validate (counts,
    uniqueness, ranges, reject rate) → load (SQLite) → report (revenue by country, top
    customers, cohorts, tiers).  --corrupt-rate makes the source bad enough to fail validation.
    """

    PROGNAME = "data_processing_pipeline.sh"
    PIPELINE_NAME = "data-processing"
    FOLDER = "data-pipeline"
    FOREGROUND_BY_DEFAULT = True

    records = number_switch("--records", int, 1, MAX_RECORDS, default=50_000, argname="N", help="records to ingest")
    corrupt_rate = number_switch(
        "--corrupt-rate", float, 0, 1, default=0.0, argname="P", help="share of ingested records with a broken e-mail"
    )
    max_reject_rate = number_switch(
        "--max-reject-rate", float, 0, 1, default=0.05, argname="P", help="validation fails above this share of rejects"
    )

    def stages(self) -> list[Stage]:
        common = ["--work-dir", str(self.work_folder)]
        options = {
            "ingest": ["--records", str(self.records), "--corrupt-rate", str(self.corrupt_rate)],
            "validate": ["--max-reject-rate", str(self.max_reject_rate)],
        }
        return [
            Stage(
                stage,
                JobRequest(
                    name=f"data-{stage}",
                    payload=payload_file("data_pipeline.py"),
                    args=[stage, *common, *options.get(stage, [])],
                    description=f"Data pipeline stage {stage} in {self.work_folder}",
                    tags=["data-processing", "pipeline", stage],
                    bundle=[payload_file("etl.py"), payload_file("analytics.py")],
                ),
                needs=STAGES[:number],  # each stage reads what the ones before it wrote
            )
            for number, stage in enumerate(STAGES)
        ]

    def pipeline_rows(self, completed: Collection[str]) -> list[tuple[str, str]]:
        work = self.work_folder
        made = {"load": ("Database", work / DATABASE_NAME), "report": ("Report", work / "report.txt")}
        rows = [(label, self.files.where(path)) for stage, (label, path) in made.items() if stage in completed]
        return [("Work folder", self.files.where(work)), *rows]


def main() -> None:
    DataProcessingPipeline.run()


if __name__ == "__main__":
    main()
