"""``data_processing_simple.sh``: its command line in-process, and end to end on a real server.

The end-to-end tests run the bash launcher as a user does, against the embedded server of
the ``server`` fixture (a temporary HODEI_STREAM_HOME), and read its output as it arrives.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import junitparser
import pytest

from hodei_stream.api import status_name
from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ExitStatus
from hodei_stream.jobs.data_processing_simple import DataProcessingSimple

from .scripts import JOB_TIMEOUT_S, OUT_LINE, UUID, Run, summary_value
from .scripts import launch as launch_script


def launch(home: Path, *args: str) -> Run:
    return launch_script("data_processing_simple.sh", home, *args)


def test_an_unreachable_server_is_one_line_and_its_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    _, status = DataProcessingSimple.run(["data_processing_simple.sh", "--etl", "--server", "127.0.0.1:1"], exit=False)
    assert status == ExitStatus.UNREACHABLE
    err = capsys.readouterr().err
    assert "cannot reach the Hodei server at 127.0.0.1:1" in err
    assert len(err.strip().splitlines()) == 1


def test_a_malformed_server_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    _, status = DataProcessingSimple.run(["data_processing_simple.sh", "--etl", "--server", "nonsense"], exit=False)
    assert status == ExitStatus.USAGE
    assert "is not host:port or unix:/path" in capsys.readouterr().err


def test_without_a_mode_it_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    _, status = DataProcessingSimple.run(["data_processing_simple.sh"], exit=False)
    assert status == ExitStatus.USAGE
    assert "choose a job: --etl or --analytics" in capsys.readouterr().err


def captured_seconds(line: str) -> float:
    match = OUT_LINE.match(line)
    assert match, line
    hours, minutes, seconds, millis = (int(part) for part in match.groups()[:4])
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


@pytest.mark.timeout(300)
def test_etl_streams_live_and_loads_what_it_reports(server: Server, home: Path) -> None:
    run = launch(home, "--etl")
    assert run.finish() == 0, run.err_text

    header = re.search(rf"📡 Streaming logs for job: ({UUID})", run.err_text)
    assert header, run.err_text
    job_id = header.group(1)
    assert summary_value(run, "Job ID") == job_id
    assert "COMPLETED" in summary_value(run, "Status")
    assert summary_value(run, "Name") == "data-processing-etl"
    assert float(summary_value(run, "Duration").rstrip("s")) > 0

    out_lines = [text for text in run.out_text if OUT_LINE.match(text)]
    assert len(out_lines) == len(run.out_text), "stdout holds only log lines"
    bodies = [OUT_LINE.match(line).group(5) for line in out_lines]  # type: ignore[union-attr]
    assert any(body.startswith("[1/3]") for body in bodies)
    assert bodies[-1].startswith("✅ ETL pipeline completed")
    # Captured while the job ran: the job's own times span its work, not one instant.
    capture_span = captured_seconds(out_lines[-1]) - captured_seconds(out_lines[0])
    assert capture_span > 0.5, f"all lines captured within {capture_span:.3f}s"
    # And delivered as they came: the first line reached us well before the last one.
    arrivals = [arrived for arrived, text in run.stdout if OUT_LINE.match(text)]
    assert arrivals[-1] - arrivals[0] > 0.5 * capture_span, "the lines arrived in one burst"

    loaded = int(re.search(r"✔ loaded ([\d,]+) rows into", "\n".join(bodies)).group(1).replace(",", ""))  # type: ignore[union-attr]
    database = Path(summary_value(run, "Database"))
    assert database == home / "work" / "etl" / "customers.db"
    assert f"into {database} in" in "\n".join(bodies)
    assert loaded >= 90_000
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM customers").fetchone() == (loaded,)
    assert summary_value(run, "Rows") == f"{loaded:,} customers"


@pytest.mark.timeout(300)
def test_background_mode_streams_through_the_unbuffered_pipeline(server: Server, home: Path) -> None:
    run = launch(home, "--etl", "--records", "5000", "--background")
    assert run.finish() == 0, run.err_text
    # The streamer's header comes through `2>&1 | cat`, so on stdout here; its lines too.
    assert re.search(rf"📡 Streaming logs for job: {UUID}", "\n".join(run.out_text))
    assert any(OUT_LINE.match(text) and "✅ ETL pipeline completed" in text for text in run.out_text)
    assert "[STATUS] job" in run.err_text and "COMPLETED" in run.err_text
    assert "COMPLETED" in summary_value(run, "Status")


def ctrl_c_after_the_first_line(run: Run, ctrl_c: bool = True) -> str:
    """Wait for the job's first log line, Ctrl+C the script (SIGINT to its process group, as a
    terminal does; else SIGTERM to it alone, as ``kill`` or a CI does), check it exits 130 and
    leaves no streamer behind (its output pipes close); the job's id."""
    give_up = time.monotonic() + JOB_TIMEOUT_S
    while not any(OUT_LINE.match(text) for text in run.out_text):
        assert run.process.poll() is None and time.monotonic() < give_up, run.err_text
        time.sleep(0.01)  # polling the reader threads' list, with the deadline above
    if ctrl_c:
        os.killpg(run.process.pid, signal.SIGINT)
    else:
        run.process.terminate()
    assert run.finish(timeout=30) == ExitStatus.INTERRUPTED
    assert not any(reader.is_alive() for reader in run.readers), "a streamer still holds the script's output"
    return re.search(rf"Streaming logs for job: ({UUID})", run.err_text).group(1)  # type: ignore[union-attr]


def interrupted_testcase(report: Path) -> junitparser.Error:
    """The one testcase of the JUnit report of a run Ctrl+C stopped: its error."""
    (case,) = next(iter(junitparser.JUnitXml.fromfile(str(report))))
    (error,) = case.result
    assert case.name == "data-processing-etl" and isinstance(error, junitparser.Error)
    assert len(error.text.splitlines()) > 1  # the job's last lines shown follow the message
    return error


@pytest.mark.timeout(300)
@pytest.mark.parametrize("ctrl_c", [True, False], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_watching_and_the_job_goes_on(server: Server, home: Path, ctrl_c: bool) -> None:
    run = launch(home, "--etl", "--junit", str(home / "etl.xml"))
    job_id = ctrl_c_after_the_first_line(run, ctrl_c)
    error = interrupted_testcase(home / "etl.xml")
    assert error.message == "not followed to its end: data_processing_simple.sh was interrupted; the job goes on"
    hint = run.err_text.split("Watch it again with: ", 1)[1].splitlines()[0]
    assert hint.endswith(f"stream-logs {job_id}"), hint  # stream-logs on PATH, else its path
    assert run.err_text.count("stopped watching") == 1, run.err_text
    assert "Traceback" not in run.err_text
    with HodeiClient(server) as client:
        assert status_name(client.wait_final(job_id, deadline_s=JOB_TIMEOUT_S).status) == "COMPLETED"


@pytest.mark.timeout(300)
def test_analytics_needs_the_etl_then_queries_what_it_loaded(server: Server, home: Path) -> None:
    before = launch(home, "--analytics")
    assert before.finish() == ExitStatus.JOB_FAILED
    assert "run the ETL job first" in "\n".join(before.out_text) + before.err_text
    assert "FAILED" in summary_value(before, "Status")

    assert launch(home, "--etl", "--records", "5000").finish() == 0
    after = launch(home, "--analytics")
    assert after.finish() == 0, after.err_text
    out = "\n".join(after.out_text)
    with sqlite3.connect(home / "work" / "etl" / "customers.db") as db:
        (customers,) = db.execute("SELECT COUNT(*) FROM customers").fetchone()
    assert f"📊 Analytics on {customers:,} customers" in out
    for title in ("Revenue by country", "Top 10 customers by revenue", "Monthly signup cohorts", "Customers by tier"):
        assert title in out
    assert "COMPLETED" in summary_value(after, "Status")


@pytest.mark.timeout(300)
def test_ctrl_c_with_cancel_on_interrupt_cancels_the_job(server: Server, home: Path) -> None:
    run = launch(home, "--etl", "--cancel-on-interrupt", "--junit", str(home / "etl.xml"))
    job_id = ctrl_c_after_the_first_line(run)
    assert interrupted_testcase(home / "etl.xml").message.endswith("it was asked to cancel (--cancel-on-interrupt)")
    assert "as --cancel-on-interrupt asks, cancelling it" in run.err_text
    assert "goes on" not in run.err_text and "Traceback" not in run.err_text
    with HodeiClient(server) as client:
        assert status_name(client.wait_final(job_id, deadline_s=JOB_TIMEOUT_S).status) == "CANCELLED"
