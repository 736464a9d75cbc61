"""Pipelines: several stages, each its own job, streamed in turn, with a stage table at the end.

``cicd_pipeline.sh`` and ``data_processing_pipeline.sh`` are ``PipelineScript`` subclasses:
they list their stages (``stages``), each a ``JobRequest`` whose jobs share one folder; this
module runs them in order with ``JobScript.run_job``, stops at the first failure (unless the
script sets ``keep_going``: then it runs every stage whose ``needs`` all completed, and skips
the others, saying which stage they wait for), and ends with a summary whose table has a row per stage: name,
job id, status (SKIPPED for the stages never run) and duration.  Ctrl+C prints the table as
it stands.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from hodei_stream.client import HodeiClient
from hodei_stream.exit_codes import ExitStatus
from hodei_stream.jobs.wrapper import (
    JobOutcome,
    JobRequest,
    JobScript,
    aligned,
    job_log_lines,
    status_mark,
)

FAILURE_MARK = "❌ "  # how the payloads begin the line that says why they failed


@dataclass(frozen=True)
class Stage:
    name: str
    request: JobRequest
    needs: tuple[str, ...] = ()  # the stages whose output this one uses: it runs only after they completed


@dataclass(frozen=True)
class StageResult:
    stage: str
    status: str  # the job's final status, SKIPPED (never run) or INTERRUPTED (Ctrl+C)
    job_id: str = "-"
    duration: str = "-"
    note: str = ""  # why a stage was skipped

    @classmethod
    def of(cls, stage: str, outcome: JobOutcome) -> StageResult:
        return cls(stage, outcome.status, outcome.job_id, f"{outcome.duration_s:.2f}s")


class PipelineScript(JobScript):
    """Base class: subclasses set ``PIPELINE_NAME`` and provide ``stages``."""

    PIPELINE_NAME = "pipeline"
    keep_going = False  # a --keep-going switch may set it: run the later stages after a failure

    def stages(self) -> list[Stage]:
        raise NotImplementedError

    def pipeline_rows(self, completed: Collection[str]) -> list[tuple[str, str]]:
        """Extra ``(label, value)`` rows for the pipeline summary: the shared folder, and what
        the ``completed`` stages of this run made (never an earlier run's files)."""
        return []

    def run_jobs(self, client: HodeiClient) -> ExitStatus:
        stages = self.stages()
        self.stage_names = [stage.name for stage in stages]
        self.results: list[StageResult] = []
        started = time.monotonic()
        failed: tuple[str, JobOutcome] | None = None  # the first failed stage
        for number, stage in enumerate(stages, start=1):
            if why := self.reason_to_skip(stage, failed):
                self.say(f"\n⏭ stage {number}/{len(stages)}: {stage.name} skipped: {why}")
                self.results.append(StageResult(stage.name, "SKIPPED", note=why))
                continue
            self.say(f"\n▶ stage {number}/{len(stages)}: {stage.name}")
            outcome = self.run_job(client, stage.request)
            self.results.append(StageResult.of(stage.name, outcome))
            if outcome.exit_status != ExitStatus.OK:
                failed = failed or (stage.name, outcome)
                because = f": {outcome.error_message}" if outcome.error_message else ""
                self.say(f"❌ stage {stage.name} {outcome.status}{because}")
        status = "FAILED" if failed else "COMPLETED"
        rows = [
            ("Pipeline", self.PIPELINE_NAME),
            ("Status", f"{status_mark(status)} {status}" + (f" at stage {failed[0]}" if failed else "")),
            ("Duration", f"{time.monotonic() - started:.2f}s"),
        ]
        completed = {result.stage for result in self.results if result.status == "COMPLETED"}
        if failed and (reason := self.explain_failure(client, failed[1])):
            rows.append(("Reason", reason))
        self.print_block("📋 Pipeline summary", rows + self.pipeline_rows(completed), stage_table(self.results))
        return ExitStatus.JOB_FAILED if failed else ExitStatus.OK

    def reason_to_skip(self, stage: Stage, failed: tuple[str, JobOutcome] | None) -> str:
        """Why ``stage`` must not run, or "": after a failure, everything (unless --keep-going),
        and with --keep-going what needs a stage that did not complete (a deploy never follows a
        failed test)."""
        if failed is not None and not self.keep_going:
            return f"the pipeline stopped at {failed[0]}"
        statuses = {result.stage: result.status for result in self.results}
        blocked = [f"{need}, which {statuses[need]}" for need in stage.needs if statuses.get(need) != "COMPLETED"]
        return f"it needs {' and '.join(blocked)}" if blocked else ""

    def explain_failure(self, client: HodeiClient, outcome: JobOutcome) -> str | None:
        """The failed stage's own last word: the payloads end a failure with a "❌ ..." line."""
        said = [line for line in job_log_lines(client, outcome.job_id) if line.startswith(FAILURE_MARK)]
        return said[-1].removeprefix(FAILURE_MARK) if said else outcome.error_message or None

    def interrupted(self, answered: bool) -> int:
        """Ctrl+C: the table as it stands (the stage being watched INTERRUPTED, the rest SKIPPED)."""
        status = super().interrupted(answered)
        results = list(getattr(self, "results", []))
        if results or self.watched_job_id:
            names = self.stage_names[len(results) :]
            if names and self.watched_job_id:
                results.append(StageResult(names.pop(0), "INTERRUPTED", self.watched_job_id))
            results += [StageResult(name, "SKIPPED") for name in names]
            self.print_block("📋 Pipeline interrupted", [("Pipeline", self.PIPELINE_NAME)], stage_table(results))
        return status


def stage_table(results: list[StageResult]) -> list[str]:
    """Aligned rows: stage, job id, status, duration, and why a stage was skipped."""
    rows = [("stage", "job id", "status", "duration", "")]
    rows += [(r.stage, r.job_id, f"{status_mark(r.status)} {r.status}", r.duration, r.note) for r in results]
    return aligned(rows)
