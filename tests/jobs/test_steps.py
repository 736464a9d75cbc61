"""``payloads/steps.py``, the stages of a flow as the steps of one job: run as a worker runs it
(``/bin/bash -c`` from ``job_spec``, in a folder of its own, stdin an open pipe never written),
and the stage table the scripts read back from its marker lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hodei_stream.jobs.payload import job_spec, payload_file
from hodei_stream.jobs.payloads.steps import main as steps_main
from hodei_stream.jobs.pipeline import results_from_markers
from hodei_stream.jobs.wrapper import JobOutcome

# A stage payload: writes a file the next stage reads (they share the job's working folder),
# or fails with its own "❌ ..." line on stderr, as the project's payloads do.
STAGE = """\
import pathlib, sys
name, action = sys.argv[1], sys.argv[2]
if action == "fail":
    print(f"{name}: something on stderr", file=sys.stderr)
    print(f"❌ {name} failed: the reason of {name}", file=sys.stderr)
    sys.exit(3)
if action == "read":
    print(f"{name} read: {pathlib.Path('handed-on.txt').read_text()}")
else:
    pathlib.Path("handed-on.txt").write_text(f"written by {name}")
    print(f"{name} wrote handed-on.txt")
"""
NAMES = ["first", "second", "third", "fourth"]


def run_steps(
    tmp_path: Path, actions: dict[str, str], needs: dict[str, list[str]], keep_going: bool
) -> tuple[int, str, str]:
    stage = tmp_path / "stage.py"
    stage.write_text(STAGE)
    plan = {
        "keep_going": keep_going,
        "steps": [
            {"name": name, "payload": "stage.py", "args": [name, actions[name]], "needs": needs.get(name, [])}
            for name in NAMES
        ],
    }
    spec = job_spec(payload_file("steps.py"), [json.dumps(plan)], bundle=[stage])
    work = tmp_path / "worker"
    work.mkdir()
    # stdin an open pipe that nobody writes, as on the platform's workers: a step must not wait on it.
    result = subprocess.run(
        [spec.command, *spec.arguments], cwd=work, stdin=subprocess.PIPE, capture_output=True, text=True, timeout=60
    )
    return result.returncode, result.stdout, result.stderr


def test_the_steps_share_the_jobs_folder_and_each_is_marked_with_its_status_and_duration(tmp_path: Path) -> None:
    status, out, _ = run_steps(tmp_path, dict.fromkeys(NAMES, "write") | {"second": "read"}, {}, keep_going=False)
    assert status == 0, out
    lines = out.splitlines()
    assert "second read: written by first" in lines
    assert lines[:2] == ["▶ stage 1/4: first", "first wrote handed-on.txt"]
    assert lines[2].startswith("■ stage 1/4: first COMPLETED in ") and lines[2].endswith("s")
    outcome = JobOutcome("job-1", "flow", "COMPLETED", "0", 1.0)
    results = results_from_markers(NAMES, lines, outcome)
    assert [(r.stage, r.status, r.job_id) for r in results] == [(name, "COMPLETED", "job-1") for name in NAMES]
    assert all(float(r.duration.rstrip("s")) >= 0 for r in results)


def test_the_first_failure_stops_the_steps_and_its_reason_is_in_its_end_marker(tmp_path: Path) -> None:
    status, out, err = run_steps(tmp_path, dict.fromkeys(NAMES, "write") | {"second": "fail"}, {}, keep_going=False)
    assert status == 1
    assert "second: something on stderr" in err and "❌ second failed: the reason of second" in err
    lines = out.splitlines()
    ended = next(line for line in lines if line.startswith("■ stage 2/4: second"))
    assert ended.endswith("(exit 3): second failed: the reason of second"), ended
    assert "⏭ stage 3/4: third skipped: the pipeline stopped at second" in lines
    results = results_from_markers(NAMES, list(reversed(lines)), JobOutcome("j", "flow", "FAILED", "", 1.0))
    assert [r.status for r in results] == ["COMPLETED", "FAILED", "SKIPPED", "SKIPPED"], "order of lines is not trusted"
    assert results[1].reason == "second failed: the reason of second"
    assert results[3].note == "the pipeline stopped at second"


def test_keep_going_runs_what_does_not_need_the_failed_step(tmp_path: Path) -> None:
    needs = {"third": ["first"], "fourth": ["second", "third"]}
    status, out, _ = run_steps(tmp_path, dict.fromkeys(NAMES, "write") | {"second": "fail"}, needs, keep_going=True)
    assert status == 1
    results = results_from_markers(NAMES, out.splitlines(), JobOutcome("j", "flow", "FAILED", "", 1.0))
    assert [r.status for r in results] == ["COMPLETED", "FAILED", "COMPLETED", "SKIPPED"]
    assert results[3].note == "it needs second, which FAILED"


def test_a_job_that_ended_mid_step_gives_that_step_the_jobs_status() -> None:
    lines = ["▶ stage 1/4: first", "■ stage 1/4: first COMPLETED in 0.10s", "▶ stage 2/4: second", "work..."]
    results = results_from_markers(NAMES, lines, JobOutcome("j", "flow", "TIMEOUT", "0", 1.0))
    assert [(r.status, r.duration) for r in results[:2]] == [("COMPLETED", "0.10s"), ("TIMEOUT", "-")]
    assert [r.note for r in results[2:]] == ["the job ended (TIMEOUT) before it"] * 2


@pytest.mark.parametrize("plan", ["not json", "{}", '{"keep_going": false, "steps": [{"name": "x"}]}'])
def test_a_bad_plan_is_refused_in_one_line(plan: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert steps_main([plan]) == 2
    assert capsys.readouterr().err.startswith("❌ steps: a bad plan (")
