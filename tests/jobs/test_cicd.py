"""``cicd_simple.sh`` and ``cicd_pipeline.sh`` end to end on the embedded server: the artifact
and its checksum in the artifact folder, a failing test suite, and the stage tables."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ExitStatus

from .scripts import launch, stage_rows, summary_value

VERSION = "1.4.0"
PIPELINE_STAGES = ["checkout", "lint", "test", "build", "package", "deploy"]


def deployed(home: Path) -> tuple[Path, Path]:
    folder = home / "artifacts" / "pricing" / VERSION
    return folder / f"pricing-{VERSION}.tar.gz", folder / f"pricing-{VERSION}.tar.gz.sha256"


@pytest.mark.timeout(300)
def test_build_then_deploy_puts_the_package_and_its_checksum_in_the_artifact_folder(server: Server, home: Path) -> None:
    deploy_first = launch("cicd_simple.sh", home, "--deploy")
    assert deploy_first.finish() == ExitStatus.JOB_FAILED
    assert "run the package stage first" in deploy_first.all_text

    build = launch("cicd_simple.sh", home, "--build")
    assert build.finish() == 0, build.err_text
    package = home / "work" / "cicd-simple" / "dist" / f"pricing-{VERSION}.tar.gz"
    built_sha = hashlib.sha256(package.read_bytes()).hexdigest()
    assert f"sha256 {built_sha}" in "\n".join(build.out_text)

    deploy = launch("cicd_simple.sh", home, "--deploy")
    assert deploy.finish() == 0, deploy.err_text
    artifact, checksum = deployed(home)
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == built_sha
    assert checksum.read_text() == f"{built_sha}  {artifact.name}\n"
    out = "\n".join(deploy.out_text)
    assert f"checksum verified: {built_sha}" in out and "a 10.00 cart totals 12.10" in out
    assert summary_value(deploy, "Artifacts") == str(home / "artifacts")


@pytest.mark.timeout(300)
def test_break_tests_makes_the_test_job_fail_and_shows_the_failure(server: Server, home: Path) -> None:
    run = launch("cicd_simple.sh", home, "--test", "--break-tests")
    assert run.finish() == ExitStatus.JOB_FAILED
    assert "FAIL: test_discount_comes_off_before_vat" in run.all_text
    assert "AssertionError: Decimal('36.82') != Decimal('33.72')" in run.all_text
    assert "FAILED (exit code 1)" in summary_value(run, "Status")
    passing = launch("cicd_simple.sh", home, "--test")
    assert passing.finish() == 0, passing.err_text
    assert "Ran 7 tests" in passing.all_text


@pytest.mark.timeout(300)
def test_pipeline_runs_every_stage_as_its_own_job_and_deploys(server: Server, home: Path) -> None:
    run = launch("cicd_pipeline.sh", home)
    assert run.finish() == 0, run.err_text
    rows = stage_rows(run)
    assert list(rows) == PIPELINE_STAGES
    assert {status for _, status in rows.values()} == {"COMPLETED"}
    assert len({job_id for job_id, _ in rows.values()}) == len(PIPELINE_STAGES)
    artifact, checksum = deployed(home)
    assert checksum.read_text().split()[0] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert "COMPLETED" in summary_value(run, "Status")


@pytest.mark.timeout(300)
def test_pipeline_stops_at_the_failed_test_stage(server: Server, home: Path) -> None:
    run = launch("cicd_pipeline.sh", home, "--break-tests")
    assert run.finish() == ExitStatus.JOB_FAILED
    rows = stage_rows(run)
    assert [rows[stage][1] for stage in PIPELINE_STAGES] == [
        "COMPLETED",
        "COMPLETED",
        "FAILED",
        "SKIPPED",
        "SKIPPED",
        "SKIPPED",
    ]
    assert summary_value(run, "Status") == "❌ FAILED at stage test"
    assert "the test suite failed" in summary_value(run, "Reason")
    assert not deployed(home)[0].exists()

    assert "⏭ stage 4/6: build skipped: the pipeline stopped at test" in run.err_text


@pytest.mark.timeout(300)
def test_keep_going_runs_what_does_not_need_the_failed_tests_and_never_deploys(server: Server, home: Path) -> None:
    good = launch("cicd_simple.sh", home, "--all")
    assert good.finish() == 0, good.err_text
    artifact, _ = deployed(home)
    good_package = artifact.read_bytes()

    run = launch("cicd_pipeline.sh", home, "--break-tests", "--keep-going")
    assert run.finish() == ExitStatus.JOB_FAILED
    rows = stage_rows(run)
    statuses = [rows[stage][1] for stage in PIPELINE_STAGES]
    assert statuses == ["COMPLETED", "COMPLETED", "FAILED", "COMPLETED", "COMPLETED", "SKIPPED"]
    assert "⏭ stage 6/6: deploy skipped: it needs test, which FAILED" in run.err_text
    assert re.search(r"^ +deploy +- +\S+ SKIPPED +- +it needs test, which FAILED$", run.err_text, re.MULTILINE)
    assert artifact.read_bytes() == good_package, "the untested build must not replace the deployed package"
    assert "Artifacts:" not in run.err_text, "nothing was deployed by this run"


@pytest.mark.timeout(300)
def test_build_with_broken_tests_warns_that_the_package_is_untested(server: Server, home: Path) -> None:
    run = launch("cicd_simple.sh", home, "--build", "--break-tests")
    assert run.finish() == 0, run.err_text
    assert "⚠️ --build --break-tests packages code whose tests fail" in run.err_text.splitlines()[0]
    assert "broken tests" in summary_value(run, "Warning")
    plain = launch("cicd_simple.sh", home, "--build")
    assert plain.finish() == 0, plain.err_text
    assert "⚠️" not in plain.err_text and "Warning" not in plain.err_text
