"""Pipelines: several stages streamed in turn, with a stage table at the end.

``cicd_pipeline.sh`` and ``data_processing_pipeline.sh`` are ``PipelineScript`` subclasses:
they list their stages (``stages``), each a ``JobRequest`` whose files are in the pipeline's
folder (``work_folder``), and this module runs them one of two ways, as CI systems do:

- where the jobs share a folder (the embedded server's state folder, or ``--workspace``):
  each stage its own job, run with ``JobScript.run_job``;
- where they share none (a remote server's workers): ONE job whose stages are its steps
  (``payloads/steps.py``); the stage table comes from the marker lines it writes at each
  stage's start and end, read from what the streamer showed (the platform keeps no line of
  a job that has ended).

Either way the first failure stops the pipeline (unless the script sets ``keep_going``: then
every stage whose ``needs`` all completed runs, and the others are skipped, saying which
stage they wait for), the script says in one line which way it runs, and the summary's table
has a row per stage: name, job id, status (SKIPPED for the stages never run) and duration.
Ctrl+C prints the table as it stands.

In a CI each stage run as its own job is a group titled with the stage, a skipped stage a
warning annotation; the one job of the stages as steps is one group.  The JUnit report has
a testcase per stage (a skipped one ``<skipped>``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from hodei_stream.ci.junit import ReportCase
from hodei_stream.client import HodeiClient
from hodei_stream.exit_codes import ExitStatus
from hodei_stream.jobs.payload import payload_file
from hodei_stream.jobs.payloads.steps import ENDED, FAILURE_MARK, SKIPPED, STARTED, reason_to_skip
from hodei_stream.jobs.workspace import Kind, WorkspaceScript
from hodei_stream.jobs.wrapper import (
    JobOutcome,
    JobRequest,
    job_log_lines,
    status_mark,
    streamed_lines,
    testcase,
)

ONE_JOB_NOTICE = (
    "▶ running as one job (stages as steps): the server's workers share no folder; "
    "name one with --workspace DIR to run each stage as its own job"
)


@dataclass(frozen=True)
class Stage:
    name: str
    request: JobRequest  # its payload a .py file: in one job, ``payloads/steps.py`` runs it with python3
    needs: tuple[str, ...] = ()  # the stages whose output this one uses: it runs only after they completed


@dataclass(frozen=True)
class StageResult:
    stage: str
    status: str  # the job's final status, SKIPPED (never run), INTERRUPTED (Ctrl+C) or UNKNOWN
    job_id: str = "-"
    duration: str = "-"
    note: str = ""  # why a stage was skipped
    reason: str = ""  # why a stage failed, in its own words (its last "❌ ..." line)
    seconds: float = 0.0

    @classmethod
    def of(cls, stage: str, outcome: JobOutcome) -> StageResult:
        return cls(stage, outcome.status, outcome.job_id, f"{outcome.duration_s:.2f}s", seconds=outcome.duration_s)


class PipelineScript(WorkspaceScript):
    """Base class: subclasses set ``PIPELINE_NAME`` and ``FOLDER`` and provide ``stages``."""

    PIPELINE_NAME = "pipeline"
    FOLDER = "pipeline"  # the stages' shared folder, under the workspace
    keep_going = False  # a --keep-going switch may set it: run the later stages after a failure
    one_job = False  # True once the stages run as the steps of one job

    def stages(self) -> list[Stage]:
        raise NotImplementedError

    @property
    def work_folder(self) -> PurePosixPath:
        return self.files.folder(self.FOLDER)

    def pipeline_rows(self, completed: Collection[str]) -> list[tuple[str, str]]:
        """Extra ``(label, value)`` rows for the pipeline summary: the shared folder, and what
        the ``completed`` stages of this run made (never an earlier run's files)."""
        return []

    def run_jobs(self, client: HodeiClient) -> ExitStatus:
        stages = self.stages()
        self.stage_names = [stage.name for stage in stages]
        self.results: list[StageResult] = []
        started = time.monotonic()
        if self.files.shared:
            where = "" if self.files.kind is Kind.LOCAL else " in the named workspace"
            self.say(f"▶ running each stage as its own job, sharing {self.work_folder}{where}")
            self.run_stages_as_jobs(client, stages)
            job_error = ""
        else:
            self.say(ONE_JOB_NOTICE)
            job_error = self.run_stages_in_one_job(client, stages)
        failed = next((result for result in self.results if result.status not in ("COMPLETED", "SKIPPED")), None)
        status = "FAILED" if failed or job_error else "COMPLETED"
        rows = [
            ("Pipeline", self.PIPELINE_NAME),
            ("Status", f"{status_mark(status)} {status}" + (f" at stage {failed.stage}" if failed else "")),
            ("Duration", f"{time.monotonic() - started:.2f}s"),
        ]
        if reason := (failed.reason if failed else "") or job_error:
            rows.append(("Reason", reason))
        completed = {result.stage for result in self.results if result.status == "COMPLETED"}
        self.print_block("📋 Pipeline summary", rows + self.pipeline_rows(completed), stage_table(self.results))
        return ExitStatus.JOB_FAILED if status == "FAILED" else ExitStatus.OK

    def run_stages_as_jobs(self, client: HodeiClient, stages: Sequence[Stage]) -> None:
        """Each stage its own job, in turn; fills ``self.results`` (a failed stage's says why)."""
        failed: str | None = None
        for number, stage in enumerate(stages, start=1):
            statuses = {result.stage: result.status for result in self.results}
            if why := reason_to_skip(stage.needs, statuses, failed, self.keep_going):
                self.say(f"\n⏭ stage {number}/{len(stages)}: {stage.name} skipped: {why}")
                self.ci_commands(self.ci.notice_of_skip(f"stage {stage.name} skipped", why))
                self.results.append(StageResult(stage.name, "SKIPPED", note=why))
                continue
            title = f"▶ stage {number}/{len(stages)}: {stage.name}"
            if not self.ci.active:  # in a CI, the group's title
                self.say(f"\n{title}")
            outcome = self.run_job(client, stage.request, title=title)
            result = StageResult.of(stage.name, outcome)
            if outcome.exit_status != ExitStatus.OK:
                failed = failed or stage.name
                because = f": {outcome.error_message}" if outcome.error_message else ""
                self.say(f"❌ stage {stage.name} {outcome.status}{because}")
                result = dataclasses.replace(result, reason=self.failure_reason(client, outcome))
            self.results.append(result)

    def run_stages_in_one_job(self, client: HodeiClient, stages: Sequence[Stage]) -> str:
        """The stages as the steps of one job; fills ``self.results`` from its marker lines.
        The job's own error when it failed though no stage did (killed, timed out), else ""."""
        self.one_job = True
        outcome = self.run_job(client, self.one_job_request(stages))
        self.results = results_from_markers(self.stage_names, streamed_lines(outcome.streamed), outcome)
        if outcome.exit_status == ExitStatus.OK:
            return ""
        return outcome.error_message or f"the job {outcome.status}"

    def testcases(self) -> list[ReportCase]:
        """The JUnit report: a testcase per stage, its failure where it failed, an error
        where Ctrl+C stopped the watch."""
        outcomes = {outcome.job_id: outcome for outcome in self.followed}
        cases = []
        for result in getattr(self, "results", []):
            if result.status == "INTERRUPTED":
                cases.append(self.interrupted_case(result.stage, self.PIPELINE_NAME))
                continue
            if result.status == "SKIPPED":
                cases.append(ReportCase(result.stage, self.PIPELINE_NAME, 0.0, skipped=result.note or "not run"))
                continue
            # A stage's own job, or the one job's (not among those followed to the end when
            # Ctrl+C stopped a later stage: its lines told how this one ended).
            outcome = outcomes.get(result.job_id) or JobOutcome(result.job_id, result.stage, result.status, "", 0.0)
            ended = dataclasses.replace(outcome, status=result.status, duration_s=result.seconds)
            case = testcase(result.stage, self.PIPELINE_NAME, ended)
            if case.failure is not None and result.reason:
                case = case._replace(failure=f"{result.reason} ({case.failure})")
            cases.append(case)
        return cases

    def one_job_request(self, stages: Sequence[Stage]) -> JobRequest:
        return steps_job(
            f"{self.PIPELINE_NAME}-pipeline",
            stages,
            keep_going=bool(self.keep_going),
            description=f"{self.PIPELINE_NAME} pipeline, its stages as steps: {' → '.join(self.stage_names)}",
            tags=[self.PIPELINE_NAME, "pipeline"],
        )

    def failure_reason(self, client: HodeiClient, outcome: JobOutcome) -> str:
        """A failed stage's own last word: the payloads end a failure with a "❌ ..." line."""
        said = [line for line in job_log_lines(client, outcome) if line.startswith(FAILURE_MARK)]
        return said[-1].removeprefix(FAILURE_MARK) if said else outcome.error_message

    def interrupted(self, answered: bool) -> int:
        """Ctrl+C: the table as it stands (the stage being watched INTERRUPTED, the rest SKIPPED)."""
        status = super().interrupted(answered)
        results = list(getattr(self, "results", []))
        if getattr(self, "one_job", False) and self.watched_job_id:
            lines = streamed_lines(self.streamed_log(self.watched_job_id))
            unfinished = JobOutcome(self.watched_job_id, self.PIPELINE_NAME, "INTERRUPTED", "", 0.0)
            results = results_from_markers(self.stage_names, lines, unfinished)
        elif results or self.watched_job_id:
            names = self.stage_names[len(results) :]
            if names and self.watched_job_id:
                results.append(StageResult(names.pop(0), "INTERRUPTED", self.watched_job_id))
            results += [StageResult(name, "SKIPPED") for name in names]
        if results:
            self.print_block("📋 Pipeline interrupted", [("Pipeline", self.PIPELINE_NAME)], stage_table(results))
        self.results = results  # the JUnit report's, too
        return status


def steps_job(
    name: str, stages: Sequence[Stage], keep_going: bool, description: str, tags: Sequence[str]
) -> JobRequest:
    """One job running ``stages`` in turn (``payloads/steps.py``), their payloads in its bundle."""
    plan = {
        "keep_going": keep_going,
        "steps": [
            {"name": s.name, "payload": s.request.payload.name, "args": list(s.request.args), "needs": list(s.needs)}
            for s in stages
        ],
    }
    bundle = dict.fromkeys(path for stage in stages for path in (stage.request.payload, *stage.request.bundle))
    return JobRequest(
        name=name,
        payload=payload_file("steps.py"),
        args=[json.dumps(plan)],
        env={key: value for stage in stages for key, value in stage.request.env.items()},
        description=description,
        tags=tags,
        bundle=list(bundle),
    )


def results_from_markers(names: Sequence[str], lines: Sequence[str], outcome: JobOutcome) -> list[StageResult]:
    """The stage table of a one-job pipeline, from the marker lines of ``payloads/steps.py``.

    Markers are matched by stage name, not by their place in the log, so a line shown out of
    order changes nothing.  A stage that started and never ended takes the job's status (it was
    killed, timed out, or Ctrl+C came); a stage never mentioned was not reached.
    """
    results: dict[str, StageResult] = {}
    for line in lines:
        if ended := ENDED.match(line):
            name = ended[3]
            results[name] = StageResult(
                name, ended[4], outcome.job_id, f"{ended[5]}s", reason=ended[7] or "", seconds=float(ended[5])
            )
        elif skipped := SKIPPED.match(line):
            results[skipped[3]] = StageResult(skipped[3], "SKIPPED", note=skipped[4])
        elif started := STARTED.match(line):
            unfinished = "UNKNOWN" if outcome.status == "COMPLETED" else outcome.status
            results.setdefault(started[3], StageResult(started[3], unfinished, outcome.job_id))
    not_reached = {"COMPLETED": "not in the job's log", "INTERRUPTED": ""}.get(
        outcome.status, f"the job ended ({outcome.status}) before it"
    )
    return [results.get(name) or StageResult(name, "SKIPPED", note=not_reached) for name in names]


def stage_table(results: list[StageResult]) -> list[tuple[str, ...]]:
    """The rows, header first: stage, job id, status, duration, and why a stage was skipped."""
    rows: list[tuple[str, ...]] = [("stage", "job id", "status", "duration", "")]
    rows += [(r.stage, r.job_id, f"{status_mark(r.status)} {r.status}", r.duration, r.note) for r in results]
    return rows
