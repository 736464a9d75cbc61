"""The job scripts against the Hodei platform stand-in, whose workers share nothing with the
client: each job runs in a mount namespace of its own where the test's state folder and the
checkout are hidden under an empty tmpfs, in a fresh working folder of its own, with the
platform's faults (no times in GetJob, names replaced, no exit code for a failed job, ListJobs
failing whenever it has rows, a job's lines dropped when it ends).

Each script runs as a user types it, with only ``HODEI_GRPC_URL`` set (or ``--workspace DIR``, a
folder outside the hidden paths that every job of the stand-in sees), and must exit as the
work went."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import junitparser
import pytest
from e2e.streaming import submit

from hodei_stream.client import HodeiClient
from hodei_stream.exit_codes import ExitStatus
from tests.platform_standin.fixture import Platform

from .scripts import JOB_TIMEOUT_S, UUID, Run, launch, stage_rows, summary_value
from .test_maven_job import MAVEN_TIMEOUT_S, failure_hints, missing_prerequisite, standalone_project

ON_ITS_WORKER = "(in the job's working folder on its worker)"
IN_WORKSPACE = "(in the named workspace)"
ONE_JOB = "▶ running as one job (stages as steps): the server's workers share no folder"
AS_JOBS = "▶ running each stage as its own job, sharing "
CICD_STAGES = ["checkout", "lint", "test", "build", "package", "deploy"]
DATA_STAGES = ["ingest", "transform", "validate", "load", "report"]


def run_script(platform: Platform, home: Path, script: str, *args: str, timeout: float = 180.0) -> tuple[int, Run]:
    run = launch(script, home, *args, env={"HODEI_GRPC_URL": platform.url})
    return run.finish(timeout), run


def durations(run: Run) -> dict[str, str]:
    """The stage table's duration column, stage → "0.12s" or "-"."""
    rows = re.findall(rf"^ +(\w+) +(?:{UUID}|-) +\S+ \w+ +(\S+)", run.err_text, re.MULTILINE)
    return dict(rows)


@pytest.mark.timeout(300)
def test_the_cicd_pipeline_runs_as_one_job_with_a_row_per_stage(platform: Platform, home: Path) -> None:
    status, run = run_script(platform, home, "cicd_pipeline.sh")
    assert status == 0, run.all_text[-3000:]
    assert ONE_JOB in run.err_text
    rows = stage_rows(run)
    assert list(rows) == CICD_STAGES and {status for _, status in rows.values()} == {"COMPLETED"}
    assert len({job_id for job_id, _ in rows.values()}) == 1, "one job ran every stage"
    assert all(re.fullmatch(r"\d+\.\d\ds", spent) for spent in durations(run).values()), run.err_text
    assert summary_value(run, "Artifacts") == f"artifacts {ON_ITS_WORKER}"
    assert "a 10.00 cart totals 12.10" in "\n".join(run.out_text)
    assert not (home / "work").exists(), "nothing of the job on the client's disk"


@pytest.mark.timeout(300)
def test_a_broken_test_stops_the_one_job_pipeline_at_test_and_keep_going_still_skips_deploy(
    platform: Platform, home: Path
) -> None:
    status, run = run_script(platform, home, "cicd_pipeline.sh", "--break-tests")
    assert status == ExitStatus.JOB_FAILED, run.all_text[-3000:]
    statuses = [status for _, status in stage_rows(run).values()]
    assert statuses == ["COMPLETED", "COMPLETED", "FAILED", "SKIPPED", "SKIPPED", "SKIPPED"], run.err_text
    assert summary_value(run, "Status") == "❌ FAILED at stage test"
    assert summary_value(run, "Reason") == "test failed: the test suite failed (see the failures above)"
    assert re.search(r"^ +build +- +\S+ SKIPPED +- +the pipeline stopped at test$", run.err_text, re.MULTILINE)
    assert re.fullmatch(r"\d+\.\d\ds", durations(run)["test"])

    status, run = run_script(platform, home, "cicd_pipeline.sh", "--break-tests", "--keep-going")
    assert status == ExitStatus.JOB_FAILED, run.all_text[-3000:]
    statuses = [status for _, status in stage_rows(run).values()]
    assert statuses == ["COMPLETED", "COMPLETED", "FAILED", "COMPLETED", "COMPLETED", "SKIPPED"], run.err_text
    assert re.search(r"^ +deploy +- +\S+ SKIPPED +- +it needs test, which FAILED$", run.err_text, re.MULTILINE)


@pytest.mark.timeout(300)
def test_the_data_pipeline_runs_as_one_job_and_a_failed_validation_says_why(platform: Platform, home: Path) -> None:
    status, run = run_script(platform, home, "data_processing_pipeline.sh")
    assert status == 0, run.all_text[-3000:]
    rows = stage_rows(run)
    assert list(rows) == DATA_STAGES and {status for _, status in rows.values()} == {"COMPLETED"}
    assert summary_value(run, "Database") == f"data-pipeline/customers.db {ON_ITS_WORKER}"
    assert summary_value(run, "Report") == f"data-pipeline/report.txt {ON_ITS_WORKER}"

    status, run = run_script(
        platform, home, "data_processing_pipeline.sh", "--records", "5000", "--corrupt-rate", "0.2"
    )
    assert status == ExitStatus.JOB_FAILED
    statuses = [status for _, status in stage_rows(run).values()]
    assert statuses == ["COMPLETED", "COMPLETED", "FAILED", "SKIPPED", "SKIPPED"], run.err_text
    assert re.match(r"validate failed: \d+\.\d% of the records were rejected", summary_value(run, "Reason"))
    assert "Database:" not in run.err_text and "Report:" not in run.err_text


@pytest.mark.timeout(300)
def test_the_analytics_after_the_etl_build_their_database_in_their_own_job(platform: Platform, home: Path) -> None:
    status, etl = run_script(platform, home, "data_processing_simple.sh", "--etl")
    assert status == 0, etl.all_text[-3000:]
    assert summary_value(etl, "Database") == f"etl/customers.db {ON_ITS_WORKER}"
    assert summary_value(etl, "Name") == "data-processing-etl", "the name submitted, not the platform's"
    assert "Rows:" not in etl.err_text, "no count of a file that is not on this machine"

    status, analytics = run_script(platform, home, "data_processing_simple.sh", "--analytics")
    assert status == 0, analytics.all_text[-3000:]
    assert "▶ --analytics builds its database within its own job (the ETL's steps first)" in analytics.err_text
    out = "\n".join(analytics.out_text)
    assert re.search(r"■ stage 1/2: etl COMPLETED in .*📊 Analytics on [\d,]+ customers", out, re.DOTALL)
    assert "Revenue by country" in out


@pytest.mark.timeout(300)
def test_cicd_simple_builds_tests_and_deploys_on_workers_that_share_nothing(platform: Platform, home: Path) -> None:
    for mode in ("--build", "--test", "--all"):
        status, run = run_script(platform, home, "cicd_simple.sh", mode)
        assert status == 0, run.all_text[-3000:]
        assert summary_value(run, "Workspace") == f"cicd-simple {ON_ITS_WORKER}"
    status, deploy = run_script(platform, home, "cicd_simple.sh", "--deploy")
    assert status == 0, deploy.all_text[-3000:]
    assert "▶ --deploy builds the package it deploys, in its own job" in deploy.err_text
    assert "checksum verified" in "\n".join(deploy.out_text)


@pytest.mark.timeout(300)
@pytest.mark.skipif(missing_prerequisite() is not None, reason=str(missing_prerequisite()))
def test_the_maven_build_runs_in_the_jobs_own_folder(platform: Platform, home: Path) -> None:
    status, run = run_script(platform, home, "maven_job_with_logs.sh", "--simple", timeout=MAVEN_TIMEOUT_S)
    assert status == 0, run.all_text[-3000:]
    assert "BUILD SUCCESS" in "\n".join(run.out_text)
    assert summary_value(run, "Local repo") == f"maven/simple/repository {ON_ITS_WORKER}"


@pytest.mark.timeout(300)
@pytest.mark.skipif(missing_prerequisite() is not None, reason=str(missing_prerequisite()))
def test_a_repo_folder_the_worker_cannot_read_travels_in_the_job_and_its_failure_is_explained(
    platform: Platform, home: Path
) -> None:
    # Under the hidden state folder: the worker cannot read it where it is.
    project = standalone_project(home / "project")
    status, run = run_script(platform, home, "maven_job_with_logs.sh", "--repo", str(project), "--goals", "validate")
    assert status == 0, run.all_text[-3000:]
    assert "BUILD SUCCESS" in "\n".join(run.out_text)
    broken = standalone_project(
        home / "broken", "<plugin><artifactId>maven-clean-plugin</artifactId><version>9.9.9</version></plugin>"
    )
    args = ("--repo", str(broken), "--goals", "clean", "--offline")
    status, run = run_script(platform, home, "maven_job_with_logs.sh", *args, timeout=MAVEN_TIMEOUT_S)
    assert status == ExitStatus.JOB_FAILED
    # The platform kept no line of the ended job: the hint comes from what was streamed.
    hints = failure_hints(run)
    assert len(hints) == 1 and "could not resolve its plugins" in hints[0], run.err_text


@pytest.mark.timeout(300)
def test_with_a_named_workspace_each_stage_is_its_own_job_sharing_it(
    platform: Platform, home: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"  # outside the hidden paths: every job of the stand-in sees it
    status, run = run_script(platform, home, "cicd_pipeline.sh", "--workspace", str(workspace))
    assert status == 0, run.all_text[-3000:]
    assert f"{AS_JOBS}{workspace / 'cicd-pipeline'} in the named workspace" in run.err_text
    rows = stage_rows(run)
    assert list(rows) == CICD_STAGES and {status for _, status in rows.values()} == {"COMPLETED"}
    assert len({job_id for job_id, _ in rows.values()}) == len(CICD_STAGES)
    artifact = next((workspace / "artifacts" / "pricing").glob("*/pricing-*.tar.gz"))
    checksum = artifact.with_name(artifact.name + ".sha256").read_text().split()[0]
    assert checksum == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert summary_value(run, "Artifacts") == f"{workspace / 'artifacts'} {IN_WORKSPACE}"

    status, run = run_script(platform, home, "cicd_pipeline.sh", "--workspace", str(workspace), "--break-tests")
    assert status == ExitStatus.JOB_FAILED
    statuses = [status for _, status in stage_rows(run).values()]
    assert statuses == ["COMPLETED", "COMPLETED", "FAILED", "SKIPPED", "SKIPPED", "SKIPPED"], run.err_text
    assert summary_value(run, "Reason") == "test failed: the test suite failed (see the failures above)"

    status, run = run_script(
        platform, home, "data_processing_pipeline.sh", "--workspace", str(workspace), "--records", "3000"
    )
    assert status == 0, run.all_text[-3000:]
    assert len({job_id for job_id, _ in stage_rows(run).values()}) == len(DATA_STAGES)
    assert (workspace / "data-pipeline" / "report.txt").is_file()


@pytest.mark.timeout(300)
def test_the_analytics_query_what_the_etl_left_in_the_workspace(
    platform: Platform, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HODEI_WORKSPACE", str(tmp_path))
    status, etl = run_script(platform, home, "data_processing_simple.sh", "--etl", "--records", "5000")
    assert status == 0, etl.all_text[-3000:]
    database = tmp_path / "etl" / "customers.db"
    with sqlite3.connect(database) as db:
        (loaded,) = db.execute("SELECT COUNT(*) FROM customers").fetchone()
    assert summary_value(etl, "Rows") == f"{loaded:,} customers"
    status, analytics = run_script(platform, home, "data_processing_simple.sh", "--analytics")
    assert status == 0, analytics.all_text[-3000:]
    assert "▶" not in analytics.err_text, "the ETL does not run again"
    assert f"📊 Analytics on {loaded:,} customers in {database}" in "\n".join(analytics.out_text)


def test_a_relative_workspace_is_refused_in_one_line(platform: Platform, home: Path) -> None:
    status, run = run_script(platform, home, "cicd_pipeline.sh", "--workspace", "shared")
    assert status == ExitStatus.USAGE
    assert run.err_text == (
        "cicd_pipeline.sh: --workspace takes an absolute path (a folder every worker mounts at the same place), "
        "not 'shared' (see cicd_pipeline.sh --help)"
    )


@pytest.mark.timeout(120)
def test_trace_job_gets_everything_from_get_job(platform: Platform, home: Path) -> None:
    server = platform.server
    job_id = submit(server, "for i in 1 2 3; do echo step $i; sleep 0.3; done; echo 'disk full' >&2; exit 3")
    status, run = run_script(platform, home, "trace-job.sh", job_id)
    assert status == ExitStatus.JOB_FAILED, run.all_text
    assert re.search(r"\[OUT\] step 3", "\n".join(run.out_text)), run.all_text
    assert summary_value(run, "Status") == "❌ FAILED (exit code unknown)"
    timeline = re.findall(r"^ +(PENDING|QUEUED|ASSIGNED|RUNNING|FAILED) +(\S+) +(\S+)$", run.err_text, re.MULTILINE)
    assert timeline[-1][0] == "FAILED" and re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", timeline[-1][1]), run.err_text
    with HodeiClient(server) as client:
        assert client.get_job(job_id).job.name == f"Job {job_id[:8]}"
    # A job that ended before the trace: the platform dates nothing, so its end is unknown.
    status, late = run_script(platform, home, "trace-job.sh", job_id, "--no-logs")
    assert status == ExitStatus.JOB_FAILED, late.all_text
    assert "[unknown] FAILED" in late.err_text
    assert re.search(r"^ +FAILED +unknown +\(final\)$", late.err_text, re.MULTILINE), late.err_text


@pytest.mark.timeout(300)
def test_ctrl_c_during_a_one_job_pipeline_prints_the_table_as_it_stands(platform: Platform, home: Path) -> None:
    report = home / "pipeline.xml"
    run = launch(
        "data_processing_pipeline.sh",
        home,
        "--records",
        "500000",
        "--junit",
        str(report),
        env={"HODEI_GRPC_URL": platform.url},
    )
    give_up = time.monotonic() + JOB_TIMEOUT_S
    while not any(text.endswith("▶ stage 2/5: transform") for text in run.out_text):
        assert run.process.poll() is None and time.monotonic() < give_up, run.all_text[-3000:]
        time.sleep(0.01)  # polling the reader threads' list, with the deadline above
    os.killpg(run.process.pid, signal.SIGINT)
    assert run.finish() == ExitStatus.INTERRUPTED, run.all_text[-3000:]
    assert "📋 Pipeline interrupted" in run.err_text
    statuses = [status for _, status in stage_rows(run).values()]
    assert statuses == ["COMPLETED", "INTERRUPTED", "SKIPPED", "SKIPPED", "SKIPPED"], run.err_text
    assert "stopped watching; the job goes on" in run.err_text
    # The report says the same: a pass, an error (the watch stopped), three never reached.
    results = [case.result for case in next(iter(junitparser.JUnitXml.fromfile(str(report))))]
    assert (
        results[0] == []
        and [type(result) for [result] in results[1:]] == [junitparser.Error] + [junitparser.Skipped] * 3
    )
    assert results[1][0].message.startswith("not followed to its end: data_processing_pipeline.sh was interrupted")


@pytest.mark.timeout(120)
def test_trace_job_of_a_job_that_completes_exits_0(start_platform: Callable[..., Platform], home: Path) -> None:
    # A worker slow to come: the trace sees the job begin to run, and dates it so.
    platform = start_platform(provisioning_delay=4)
    job_id = submit(platform.server, "echo one; sleep 0.5; echo two")
    status, run = run_script(platform, home, "trace-job.sh", job_id)
    assert status == 0, run.all_text
    assert summary_value(run, "Status") == "✅ COMPLETED (exit code 0)"
    assert re.search(r"\[OUT\] one.*\[OUT\] two", "\n".join(run.out_text), re.DOTALL), run.all_text
    assert re.search(r"^ +RUNNING +\d\d:\d\d:\d\d\.\d{3} +\d+\.\d{3}s$", run.err_text, re.MULTILINE), run.err_text
