"""``data_processing_pipeline.sh``: ingest → transform → validate → load → report, one job per stage.

Every stage runs ``payloads/data_pipeline.py`` (with the ETL and analytics payloads in its
bundle, for their rules and queries) in one work folder, ``<state home>/work/data-pipeline``;
a failed validation stops the pipeline with its reason (see ``hodei_stream.jobs.pipeline``).
"""

from __future__ import annotations

from pathlib import Path

from plumbum import cli

from hodei_stream.jobs.payload import payload_file
from hodei_stream.jobs.pipeline import PipelineScript, Stage
from hodei_stream.jobs.wrapper import JobRequest
from hodei_stream.state_folder import state_home

STAGES = ("ingest", "transform", "validate", "load", "report")


def work_dir() -> Path:
    return state_home() / "work" / "data-pipeline"


class DataProcessingPipeline(PipelineScript):
    """Run a data pipeline on a Hodei server: each stage its own job, sharing one work folder.

    ingest (raw customer records as CSV) → transform (clean them) → validate (counts,
    uniqueness, ranges, reject rate) → load (SQLite) → report (revenue by country, top
    customers, cohorts, tiers).  --corrupt-rate makes the source bad enough to fail validation.
    """

    PROGNAME = "data_processing_pipeline.sh"
    PIPELINE_NAME = "data-processing"
    FOREGROUND_BY_DEFAULT = True

    records = cli.SwitchAttr("--records", cli.Range(1, 10_000_000), default=50_000, argname="N", help="records to ingest")
    corrupt_rate = cli.SwitchAttr(
        "--corrupt-rate", float, default=0.0, argname="P", help="share of ingested records with a broken e-mail (0-1)"
    )
    max_reject_rate = cli.SwitchAttr(
        "--max-reject-rate", float, default=0.05, argname="P", help="validation fails above this share of rejects (0-1)"
    )

    def stages(self) -> list[Stage]:
        common = ["--work-dir", str(work_dir())]
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
                    description=f"Data pipeline stage {stage} in {work_dir()}",
                    tags=["data-processing", "pipeline", stage],
                    bundle=[payload_file("etl.py"), payload_file("analytics.py")],
                ),
            )
            for stage in STAGES
        ]

    def pipeline_rows(self) -> list[tuple[str, str]]:
        return [("Work folder", str(work_dir())), ("Report", str(work_dir() / "report.txt"))]


def main() -> None:
    DataProcessingPipeline.run()


if __name__ == "__main__":
    main()
