"""Every job script's command line as a new user meets it: a value out of range, an unknown or
conflicting option, a missing argument.  Each is one line on stderr, in our words, naming the
option and pointing at --help, with exit status 2 and nothing started; -v prints the real
version.  The launchers run as a user runs them (bash, then the project's Python)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from hodei_stream.exit_codes import ExitStatus

from .scripts import launch

JOB_ID = "00000000-0000-4000-8000-000000000000"
# script, arguments, what the one line must say.
USAGE_ERRORS = [
    ("data_processing_pipeline.sh", ["--corrupt-rate", "1.5"], "--corrupt-rate takes a number from 0 to 1, not 1.5"),
    ("data_processing_pipeline.sh", ["--corrupt-rate", "-0.5"], "--corrupt-rate takes a number from 0 to 1, not -0.5"),
    ("data_processing_pipeline.sh", ["--corrupt-rate", "nan"], "--corrupt-rate takes a number from 0 to 1, not nan"),
    (
        "data_processing_pipeline.sh",
        ["--max-reject-rate", "-1"],
        "--max-reject-rate takes a number from 0 to 1, not -1",
    ),
    (
        "data_processing_pipeline.sh",
        ["--max-reject-rate", "nan"],
        "--max-reject-rate takes a number from 0 to 1, not nan",
    ),
    (
        "data_processing_pipeline.sh",
        ["--max-reject-rate", "inf"],
        "--max-reject-rate takes a number from 0 to 1, not inf",
    ),
    ("data_processing_pipeline.sh", ["--records", "0"], "--records takes a whole number from 1 to 10,000,000, not 0"),
    ("data_processing_pipeline.sh", ["--records", "10000001"], "--records takes a whole number from 1 to 10,000,000"),
    (
        "data_processing_pipeline.sh",
        ["--records", "many"],
        "--records takes a whole number from 1 to 10,000,000, not 'many'",
    ),
    ("data_processing_pipeline.sh", ["--records"], "--records needs a value"),
    ("data_processing_simple.sh", ["--records", "5"], "--records needs --etl"),
    ("data_processing_simple.sh", ["--etl", "--records", "-3"], "--records takes a whole number from 1"),
    ("data_processing_simple.sh", ["--etl", "--analytics"], "--analytics cannot be used with --etl"),
    ("data_processing_simple.sh", [], "choose a job: --etl or --analytics"),
    ("trace-job.sh", ["--interval", "nan", JOB_ID], "--interval takes a number from 0.01 to 60, not nan"),
    ("trace-job.sh", ["--interval", "1e308", JOB_ID], "--interval takes a number from 0.01 to 60, not 1e308"),
    ("trace-job.sh", ["--interval", "0", JOB_ID], "--interval takes a number from 0.01 to 60, not 0"),
    ("trace-job.sh", [], "missing JOB_ID"),
    ("trace-job.sh", [JOB_ID, "extra"], "unexpected argument 'extra'"),
    ("trace-job.sh", ["not-a-uuid"], "not-a-uuid"),
    ("cicd_simple.sh", ["--bogus"], "unknown option --bogus"),
    ("cicd_simple.sh", ["--deploy", "--break-tests"], "--break-tests needs a checkout"),
    ("cicd_simple.sh", ["--test", "--build"], "cannot be used with"),
    ("cicd_pipeline.sh", ["--keep-going", "--fail-fast"], "--keep-going cannot be used with --fail-fast"),
    ("cicd_pipeline.sh", ["--server", "nonsense"], "is not host:port or unix:/path"),
    ("maven_job_with_logs.sh", ["--repo", "/nonexistent"], "--repo /nonexistent: no such folder"),
    ("maven_job_with_logs.sh", ["--repo", "file:///nonexistent"], "--repo file:///nonexistent: no such folder"),
    ("maven_job_with_logs.sh", ["--simple", "--complex"], "--complex cannot be used with --simple"),
    ("maven_job_with_logs.sh", ["--goals"], "--goals needs a value"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("script", "args", "says"), USAGE_ERRORS, ids=[f"{s} {' '.join(a)}" for s, a, _ in USAGE_ERRORS]
)
def test_a_usage_error_is_one_line_and_exit_2(script: str, args: list[str], says: str, home: Path) -> None:
    run = launch(script, home, *args)
    assert run.finish() == ExitStatus.USAGE, run.all_text
    lines = run.err_text.splitlines()
    assert len(lines) == 1, run.err_text
    assert lines[0].startswith(f"{script}: ") and lines[0].endswith(f"(see {script} --help)"), lines[0]
    assert says in lines[0]
    # plumbum's own wording never shows ("Given --records, the following are missing ['etl']").
    for leak in ("Given ", "following are", "['", "Error:", "Traceback", "expected to be"):
        assert leak not in lines[0]
    assert run.out_text == []
    assert not (home / "server.json").exists(), "a refused command line starts no server"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "script", ["cicd_simple.sh", "data_processing_pipeline.sh", "trace-job.sh", "maven_job_with_logs.sh"]
)
def test_version_is_the_packages(script: str, home: Path) -> None:
    run = launch(script, home, "-v")
    assert run.finish() == 0
    assert run.out_text == [f"{script} {importlib.metadata.version('hodei-stream')}"]


@pytest.mark.timeout(60)
def test_help_states_ranges_and_each_default_once(home: Path) -> None:
    run = launch("trace-job.sh", home, "--help")
    assert run.finish() == 0
    help_text = " ".join(" ".join(run.out_text).split())
    assert "--interval S:[0.01..60] seconds between status checks; the default is 0.2" in help_text
    assert help_text.count("0.2") == 1
    pipeline = launch("data_processing_pipeline.sh", home, "--help")
    assert pipeline.finish() == 0
    assert "--corrupt-rate P:[0..1]" in "\n".join(pipeline.out_text)
