"""``data_processing_pipeline.sh`` end to end: five jobs in one work folder, the rows in SQLite,
the report, and a validation failure that fails the pipeline with its reason."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ExitStatus

from .scripts import launch, stage_rows, summary_value

STAGES = ["ingest", "transform", "validate", "load", "report"]


@pytest.mark.timeout(300)
def test_the_pipeline_loads_the_validated_rows_and_reports_on_them(server: Server, home: Path) -> None:
    run = launch("data_processing_pipeline.sh", home, "--records", "20000")
    assert run.finish() == 0, run.err_text
    rows = stage_rows(run)
    assert list(rows) == STAGES and {status for _, status in rows.values()} == {"COMPLETED"}

    work = home / "work" / "data-pipeline"
    out = "\n".join(run.out_text)
    staged = int(re.search(r"✔ ([\d,]+) rows staged", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    rejected = sum(int(n.replace(",", "")) for n in re.findall(r"rejected +([\d,]+): \w+", out))
    assert staged + rejected == 20_000 and staged > 19_000
    with sqlite3.connect(work / "customers.db") as db:
        assert db.execute("SELECT COUNT(*) FROM customers").fetchone() == (staged,)
        (top_revenue,) = db.execute("SELECT revenue FROM customers ORDER BY revenue DESC LIMIT 1").fetchone()
    report = (work / "report.txt").read_text()
    assert f"📊 Analytics on {staged:,} customers" in report
    assert "Revenue by country" in report and f"{top_revenue:,.2f}" in report
    assert summary_value(run, "Report") == str(work / "report.txt")
    assert summary_value(run, "Database") == str(work / "customers.db")


@pytest.mark.timeout(300)
def test_a_validation_failure_fails_the_pipeline_with_the_reason_and_names_nothing_it_did_not_make(
    server: Server, home: Path
) -> None:
    work = home / "work" / "data-pipeline"
    earlier = launch("data_processing_pipeline.sh", home, "--records", "2000")
    assert earlier.finish() == 0, earlier.err_text
    assert (work / "report.txt").is_file() and (work / "customers.db").is_file()

    run = launch("data_processing_pipeline.sh", home, "--records", "5000", "--corrupt-rate", "0.2")
    assert run.finish() == ExitStatus.JOB_FAILED
    statuses = [status for _, status in stage_rows(run).values()]
    assert statuses == ["COMPLETED", "COMPLETED", "FAILED", "SKIPPED", "SKIPPED"]
    reason = summary_value(run, "Reason")
    assert re.match(
        r"validate failed: \d+\.\d% of the records were rejected, above the 5\.0% limit \(invalid_email", reason
    )
    # The earlier run's database and report are gone, and the summary points at neither.
    assert not (work / "customers.db").exists() and not (work / "report.txt").exists()
    assert summary_value(run, "Work folder") == str(work)
    assert "Report:" not in run.err_text and "Database:" not in run.err_text
    assert (
        "it needs" not in run.err_text and "⏭ stage 4/5: load skipped: the pipeline stopped at validate" in run.err_text
    )


@pytest.mark.parametrize("rate", ["nan", "-0.1", "1.5"])
def test_the_stage_payload_itself_refuses_a_share_outside_0_to_1(rate: str, tmp_path: Path) -> None:
    # The payload runs on workers for any client: nan there would switch validation off.
    payloads = Path(__file__).parents[2] / "hodei_stream" / "jobs" / "payloads"
    result = subprocess.run(
        [
            sys.executable,
            str(payloads / "data_pipeline.py"),
            "validate",
            "--work-dir",
            str(tmp_path),
            "--max-reject-rate",
            rate,
        ],
        env={**os.environ, "HODEI_BUNDLE_DIR": str(payloads)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"expected a share from 0 to 1, not {rate}" in result.stderr
