"""The ETL payload, run as a worker runs it (``bash -c SCRIPT``), on a small data set."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

from hodei_stream.jobs.payload import job_spec, payload_file
from hodei_stream.jobs.payloads import analytics
from hodei_stream.jobs.payloads.etl import DATABASE_NAME, EMAIL_PATTERN, WORK_DIR_ENV

RECORDS = 5_000


def run_etl(work_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    spec = job_spec(payload_file("etl.py"), ["--records", str(RECORDS), *args], {WORK_DIR_ENV: str(work_dir)})
    # env without PYTHONPATH: the payload must not need hodei_stream, as on a real worker.
    return subprocess.run(
        [spec.command, *spec.arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
        cwd=work_dir.parent,
    )


def reported_number(pattern: str, stdout: str) -> int:
    match = re.search(pattern, stdout)
    assert match, f"no line matching {pattern!r} in:\n{stdout}"
    return int(match.group(1).replace(",", ""))


def test_etl_loads_what_it_reports_and_drops_the_invalid_rows(tmp_path: Path) -> None:
    work_dir = tmp_path / "etl work"
    result = run_etl(work_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    steps = [line for line in out.splitlines() if re.match(r"\[\d/3\]", line)]
    assert [step[:5] for step in steps] == ["[1/3]", "[2/3]", "[3/3]"]
    assert out.rstrip().splitlines()[-1].startswith("✅ ETL pipeline completed")

    generated = reported_number(r"✔ ([\d,]+) records generated", out)
    dropped = {
        reason: int(count.replace(",", "")) for count, reason in re.findall(r"dropped +([\d,]+) rows: (\w+)", out)
    }
    loaded = reported_number(r"✔ loaded ([\d,]+) rows into", out)
    database = work_dir / DATABASE_NAME
    assert f"into {database} in" in out
    assert generated == RECORDS
    assert set(dropped) == {
        "invalid_email",
        "unknown_country",
        "bad_signup_date",
        "negative_orders",
        "bad_revenue",
        "duplicate_id",
    }
    assert loaded == generated - sum(dropped.values())

    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM customers").fetchone() == (loaded,)
        assert dict(db.execute("SELECT reason, count FROM rejected")) == dropped
        assert db.execute("SELECT generated, loaded, seed FROM etl_run").fetchone() == (RECORDS, loaded, 42)
        emails = [email for (email,) in db.execute("SELECT email FROM customers")]
        assert all(EMAIL_PATTERN.match(email) for email in emails)
        assert len(set(emails)) == len(emails)
        assert db.execute(
            "SELECT COUNT(*) FROM customers WHERE orders < 0 OR revenue < 0 OR length(country) != 2"
            " OR signup_month != substr(signup_date, 1, 7)"
            " OR tier NOT IN ('bronze', 'silver', 'gold', 'platinum')"
        ).fetchone() == (0,)
        indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"customers_country", "customers_signup_month", "customers_tier"} <= indexes
    assert not list(work_dir.glob("*.building")), "the half-built database was left behind"


def revenue_total(database: Path) -> float:
    with sqlite3.connect(database) as db:
        (total,) = db.execute("SELECT SUM(revenue) FROM customers").fetchone()
    return float(total)


def test_same_seed_same_data_and_a_rerun_replaces_the_database(tmp_path: Path) -> None:
    database = tmp_path / "w" / DATABASE_NAME
    assert run_etl(tmp_path / "w").returncode == 0
    first_total = revenue_total(database)
    rerun = run_etl(tmp_path / "w")
    assert rerun.returncode == 0
    assert revenue_total(database) == first_total
    with sqlite3.connect(database) as db:
        loaded = reported_number(r"✔ loaded ([\d,]+) rows", rerun.stdout)
        assert db.execute("SELECT COUNT(*) FROM customers").fetchone() == (loaded,)
    assert run_etl(tmp_path / "other", "--seed", "7").returncode == 0
    assert revenue_total(tmp_path / "other" / DATABASE_NAME) != first_total


def test_a_failure_is_one_line_on_stderr_and_a_non_zero_exit(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    result = run_etl(not_a_folder)
    assert result.returncode == 1
    assert result.stderr.startswith("❌ ETL pipeline failed:")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def run_analytics(work_dir: Path) -> subprocess.CompletedProcess[str]:
    spec = job_spec(payload_file("analytics.py"), env={WORK_DIR_ENV: str(work_dir)})
    return subprocess.run(
        [spec.command, *spec.arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_analytics_shares_the_etl_payloads_names() -> None:
    """Payloads cannot import each other on a worker, so the names are repeated: keep them equal."""
    assert (analytics.DATABASE_NAME, analytics.WORK_DIR_ENV) == (DATABASE_NAME, WORK_DIR_ENV)


def test_analytics_tables_agree_with_the_loaded_data(tmp_path: Path) -> None:
    assert run_etl(tmp_path).returncode == 0
    result = run_analytics(tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert [line[:5] for line in out.splitlines() if re.match(r"\[\d/4\]", line)] == [
        "[1/4]",
        "[2/4]",
        "[3/4]",
        "[4/4]",
    ]
    with sqlite3.connect(tmp_path / DATABASE_NAME) as db:
        ((top_id, top_revenue),) = db.execute(
            "SELECT customer_id, revenue FROM customers ORDER BY revenue DESC LIMIT 1"
        )
        by_country = dict(db.execute("SELECT country, COUNT(*) FROM customers GROUP BY country"))
    assert re.search(rf"#{top_id} .* {top_revenue:,.2f} ", out), out
    for country, customers in by_country.items():
        assert re.search(rf"^ +{country} +{customers:,} ", out, re.MULTILINE), (country, out)
    assert out.rstrip().splitlines()[-1].startswith("✅ Analytics completed")


def test_analytics_before_any_etl_says_to_run_it_first(tmp_path: Path) -> None:
    result = run_analytics(tmp_path)
    assert result.returncode == 1
    assert "run the ETL job first" in result.stderr
    assert "Traceback" not in result.stderr
