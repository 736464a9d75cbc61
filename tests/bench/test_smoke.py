"""One scenario end to end against a real embedded server: the benchmark's plumbing works and
what it reports is what happened (every line once, in order, seen live)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hodei_stream import cli
from hodei_stream.bench import latency
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
