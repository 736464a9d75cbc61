"""``trace-job.sh`` end to end, and the proof that a script's background streaming is
unbuffered: lines written 100 ms apart reach a pipe 100 ms apart."""

from __future__ import annotations

import itertools
import os
import re
import statistics
import time
from pathlib import Path

import pytest
from e2e.streaming import read_timed, strip_colours, submit

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ExitStatus
from hodei_stream.jobs.trace_job import clock

from .scripts import SCRIPTS, launch, summary_value

LINES = 40
# A job that fails after a few lines (one on stderr), with its own exit code.
FAILING = "for i in 1 2 3; do echo step $i; sleep 0.2; done; echo 'disk full' >&2; exit 3"
# Unflushed prints 100 ms apart: only unbuffered capture and delivery keep them apart.
TICKS = f"python3 -c 'import time\nfor i in range({LINES}):\n    print(f\"tick {{i}}\")\n    time.sleep(0.1)\n'"


@pytest.mark.timeout(120)
def test_trace_shows_the_timeline_the_logs_and_the_result(server: Server, home: Path) -> None:
    job_id = submit(server, FAILING, name="failing job")
    run = launch("trace-job.sh", home, job_id)
    assert run.finish() == ExitStatus.JOB_FAILED, run.err_text
    out = "\n".join(run.out_text)
    assert re.search(r"\[OUT\] step 1.*\[OUT\] step 3.*\[ERR\] disk full", out, re.DOTALL)
    timeline = re.findall(
        r"^ +(QUEUED|ASSIGNED|RUNNING|FAILED) +(\d\d:\d\d:\d\d\.\d{3}) +(\S+)", run.err_text, re.MULTILINE
    )
    states = [state for state, _, _ in timeline]
    assert states[0] == "QUEUED" and states[-2:] == ["RUNNING", "FAILED"], run.err_text
    running_s = float({state: spent for state, _, spent in timeline}["RUNNING"].rstrip("s"))
    assert 0.5 < running_s < 10, "the job ran ~0.6 s"
    assert summary_value(run, "Status") == "❌ FAILED (exit code 3)"
    assert summary_value(run, "Name") == "failing job"


@pytest.mark.timeout(120)
def test_trace_without_logs_and_bad_ids(server: Server, home: Path) -> None:
    job_id = submit(server, "echo only-in-the-log")
    run = launch("trace-job.sh", home, job_id, "--no-logs", "--interval", "0.05")
    assert run.finish() == 0, run.err_text
    assert "only-in-the-log" not in run.all_text
    assert "COMPLETED" in summary_value(run, "Status")
    assert launch("trace-job.sh", home, "not-a-uuid").finish() == ExitStatus.USAGE
    missing = launch("trace-job.sh", home, "00000000-0000-4000-8000-000000000000")
    assert missing.finish() == ExitStatus.NOT_FOUND
    assert "no job 00000000-0000-4000-8000-000000000000" in missing.err_text


@pytest.mark.timeout(120)
def test_a_finished_job_is_stamped_with_when_it_ended_not_when_it_was_traced(server: Server, home: Path) -> None:
    job_id = submit(server, "echo done", name="quick job")
    with HodeiClient(server) as client:
        execution = client.wait_final(job_id).executions[-1]
    ended = clock(execution.end_time.ToNanoseconds() / 1e9)
    started = clock(execution.start_time.ToNanoseconds() / 1e9)
    time.sleep(1.5)  # so that "now" and the job's end differ in every printed digit that matters
    run = launch("trace-job.sh", home, job_id, "--no-logs")
    assert run.finish() == 0, run.err_text
    assert f"[{ended}] COMPLETED" in run.err_text, run.err_text
    timeline = dict(re.findall(r"^ +(QUEUED|RUNNING|COMPLETED) +(\d\d:\d\d:\d\d\.\d{3}) ", run.err_text, re.MULTILINE))
    assert timeline["COMPLETED"] == ended and timeline["RUNNING"] == started, run.err_text


@pytest.mark.timeout(120)
def test_background_streaming_reaches_a_pipe_line_by_line(server: Server, home: Path) -> None:
    job_id = submit(server, TICKS, name="ticks")
    result = read_timed(
        [str(SCRIPTS / "trace-job.sh"), job_id, "--background"],
        tty=False,
        env={**os.environ, "HODEI_STREAM_HOME": str(home)},
    )
    assert result.status == 0
    arrivals = [at for at, text in result.lines if re.search(r"\[OUT\] tick \d+$", strip_colours(text))]
    assert len(arrivals) == LINES, result.texts
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # The lines written before the script subscribed come at once, as history; from the
    # first real gap on, the lines are live.  Written 100 ms apart and delivered one by one,
    # they stay ~100 ms apart; held back in a buffer, they would arrive in bursts.
    first_live = next(index for index, gap in enumerate(gaps) if gap > 0.05)
    live = gaps[first_live:]
    assert len(live) >= LINES // 2, f"only {len(live)} lines arrived live: {gaps}"
    assert statistics.median(live) > 0.08, live
    assert sum(gap < 0.02 for gap in live) <= 1, live
    print(
        f"\n{len(live)} live gaps: median {statistics.median(live) * 1000:.0f} ms, "
        f"min {min(live) * 1000:.0f} ms, max {max(live) * 1000:.0f} ms"
    )
