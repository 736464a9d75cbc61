"""One scenario end to end against a real embedded server: the benchmark's plumbing works and
what it reports is what happened (every line once, in order, seen live)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hodei_stream import cli
from hodei_stream.bench import history, latency
from hodei_stream.bench.__main__ import main as bench_main
from hodei_stream.bench.clients import Client, stream_logs
from hodei_stream.endpoint import Server


def test_latency_of_stream_logs_under_a_pty(server: Server) -> None:
    row = latency.measure("latency", Client("stream-logs", stream_logs), server.target, lines=20, rate=100.0, tty=True)
    assert row.values["delivery"] == "all once, in order"
    assert row.values["shown_live"] != "0%"  # lines came while the job still wrote
    assert isinstance(row.values["p99_ms"], float) and 0 < row.values["p99_ms"] < 1000


def test_startup_through_hodei_bench_writes_table_and_json(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "bench.json"
    status = cli.main(["bench", "--quick", "--only", "startup", "--server", server.target, "--json", str(results)])
    assert status == 0
    rows = {row["client"]: row for row in json.loads(results.read_text())["rows"]}
    assert rows["stream-logs"]["values"]["runs"] == 3
    assert rows["stream-logs"]["values"]["median_ms"] > 0
    assert "| stream-logs | pty |" in capsys.readouterr().out


def test_bad_server_url_is_a_usage_error() -> None:
    assert bench_main(["--server", "nonsense", "--only", "startup"]) == 2


def test_history_scenario_measures_each_row_and_the_store(tmp_path: Path) -> None:
    # A fresh embedded server of the scenario's own (not --server): the store row needs it.
    results = tmp_path / "bench.json"
    assert bench_main(["--quick", "--only", "history", "--json", str(results)]) == 0
    rows = {row["client"]: row for row in json.loads(results.read_text())["rows"]}
    for name in ("stream-logs --no-follow --tail 10", "stream-logs --no-follow", "stream-logs (following)"):
        assert rows[name]["note"] == ""  # every run exited 0
        assert len(rows[name]["values"]["runs_s"].split(" / ")) == history.HISTORY_RUNS
        assert rows[name]["values"]["time_s"] > 0
    store = rows["store (state folder after the job)"]["values"]
    assert store["store_ratio"] > 0.1


def test_history_text_bytes_are_what_the_job_writes() -> None:
    command, arguments = history.history_job(12_345)
    job = subprocess.run([command, *arguments], capture_output=True, check=True)
    assert history.text_bytes(12_345) == len(job.stdout)
