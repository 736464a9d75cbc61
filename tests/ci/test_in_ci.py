"""stream-logs, ``hodei run`` and cicd_pipeline.sh with each CI's variables, their output read
as the runners read it (``runners.py``); the JUnit reports read back by junitparser; and
outside a CI the output as it always was."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import junitparser
import pytest

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ExitStatus
from tests.conftest import ServerProcess
from tests.e2e.streaming import HODEI, STREAM_LOGS, submit
from tests.jobs.scripts import JOB_TIMEOUT_S, SCRIPTS, UUID
from tests.platform_standin.fixture import Platform

from .runners import Command, groups_balanced, read_as_github, read_as_gitlab

GITHUB = {"GITHUB_ACTIONS": "true"}
GITLAB = {"GITLAB_CI": "true"}
# A job's lines that would be commands to the runners, were they obeyed.
HOSTILE_LINES = [
    "##[set-output name=x;]y",
    "##[add-mask]x",
    "::error::fake",
    "##[stop-commands]guess",
    "cut\r::warning::fake at a line start for the runner",
    "\x1b[0Ksection_start:1:evil[collapsed=true]\r\x1b[0Kfake section",
    "\x1b[0Ksection_end:1:evil\r\x1b[0K",
]
BENIGN_LINES = [f"plain line {n}" for n in range(len(HOSTILE_LINES))]


def job_printing(lines: list[str], status: int) -> str:
    printed = " ".join(f"'{line.encode().hex()}'" for line in lines)
    return f'for hex in {printed}; do echo "$hex" | xxd -r -p; echo; done; exit {status}'


def run_bytes(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``command``'s output decoded, its carriage returns kept (the runners cut lines at them)."""
    done = subprocess.run(command, capture_output=True, timeout=JOB_TIMEOUT_S, env={**os.environ, **env})
    return subprocess.CompletedProcess(command, done.returncode, done.stdout.decode(), done.stderr.decode())


def stream_logs(server: Server, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_bytes([*STREAM_LOGS, "--server", server.target, *args], env)


def finished_job(server: Server, lines: list[str], status: int) -> str:
    job_id = submit(server, job_printing(lines, status))
    stream_logs(server, {}, "--quiet", job_id)  # until it ends
    return job_id


def normalised(commands: list[Command], *variable: str) -> list[Command]:
    """The commands with what differs from run to run (ids, a path) left out."""

    def plain(text: str) -> str:
        for value in variable:
            text = text.replace(value, "…")
        return re.sub(UUID, "ID", text)

    return [Command(c.name, tuple((key, plain(value)) for key, value in c.properties), plain(c.data)) for c in commands]


@pytest.fixture(scope="module", autouse=True)
def xxd_present() -> None:
    if subprocess.run(["sh", "-c", "command -v xxd"], capture_output=True).returncode:
        pytest.skip("xxd is not installed: the jobs print their bytes with it")


def test_on_github_a_job_line_issues_no_command(server: Server) -> None:
    hostile = stream_logs(server, GITHUB, finished_job(server, HOSTILE_LINES, 3))
    benign = stream_logs(server, GITHUB, finished_job(server, BENIGN_LINES, 3))
    assert hostile.returncode == benign.returncode == 1
    assert hostile.stderr == ""  # in a CI, one stream, in order
    read, expected = read_as_github(hostile.stdout), read_as_github(benign.stdout)
    assert read.names() == ["group", "endgroup", "error"]
    assert normalised(read.commands) == normalised(expected.commands)
    assert groups_balanced(read) and not read.stopped_at_end
    assert any("##[set-output name=x;]y" in line for line in read.ignored)
    assert any(line == "::warning::fake at a line start for the runner" for line in read.ignored)
    (error,) = [c for c in read.commands if c.name == "error"]
    assert "exit code 3" in error.data and re.search(f"job id {UUID}", error.data)
    end_line = next(i for i, line in enumerate(read.shown) if "stream ended: job FAILED" in line)
    lines = hostile.stdout.splitlines()
    assert lines.index("::endgroup::") < next(i for i, line in enumerate(lines) if "stream ended" in line)
    assert end_line > 0


def test_with_raw_the_job_lines_pass_as_written(server: Server) -> None:
    read = read_as_github(stream_logs(server, GITHUB, "--raw", finished_job(server, HOSTILE_LINES, 0)).stdout)
    assert "set-output" in read.names()  # what --raw is for: a trusted job's own commands


def test_on_gitlab_a_job_line_opens_no_section(server: Server) -> None:
    hostile = stream_logs(server, GITLAB, finished_job(server, HOSTILE_LINES, 3))
    (section,) = read_as_gitlab(hostile.stdout)
    assert section.name.startswith("hodei-") and section.options == "collapsed=true"
    assert section.start_s > 1_000_000_000
    after = hostile.stdout.split("section_end:", 1)[1]
    assert "stream ended: job FAILED" in after  # the failure, outside the folded section
    assert "\\x1b[0Ksection_start:1:evil" in hostile.stdout


def test_hodei_run_groups_its_job_and_writes_junit(server: Server, tmp_path: Path) -> None:
    report = tmp_path / "run.xml"
    command = [*HODEI, "--server", server.target, "run", "--junit", str(report), "--", "sh", "-c", "echo hi; exit 4"]
    run = run_bytes(command, GITHUB)
    assert run.returncode == 1
    read = read_as_github(run.stdout)
    assert read.names() == ["group", "endgroup", "error"] and groups_balanced(read)
    (case,) = next(iter(junitparser.JUnitXml.fromfile(str(report))))
    (failure,) = case.result
    assert "exit code 4" in failure.message and failure.text.endswith("hi")


def watching_until(command: list[str], *texts: str) -> subprocess.Popen[str]:
    """``command`` started, its stdout and stderr read as one until every one of ``texts``
    was shown (stream-logs ending first fails the test); the process, still running."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    shown = ""
    while not all(text in shown for text in texts):
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line, f"stream-logs ended before it showed {texts}: {shown}"
        shown += line
    return process


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_watch_reports_each_job_as_it_stood(server: Server, tmp_path: Path, signum: int) -> None:
    # One job ended, one still writes: the first has its failure, the second an error
    # saying why it has no end, with the last lines shown of it.
    ended = finished_job(server, ["done here"], 3)
    running = submit(server, "echo first; echo second; exec sleep 600")
    report = tmp_path / "watch.xml"
    # Once the first job's end and the other's lines are shown.
    process = watching_until(
        [*STREAM_LOGS, "--server", server.target, "--junit", str(report), "--no-timestamps", ended, running],
        "job FAILED",
        "second",
    )
    process.send_signal(signum)
    assert process.wait(timeout=15) == 130
    cases = {case.name: case for case in next(iter(junitparser.JUnitXml.fromfile(str(report))))}
    (failure,) = cases[ended].result
    assert isinstance(failure, junitparser.Failure) and "exit code 3" in failure.message
    (error,) = cases[running].result
    assert isinstance(error, junitparser.Error)
    assert error.message == "not followed to its end: stream-logs was interrupted; the job goes on"
    assert error.text.splitlines()[-2:] == ["first", "second"]
    with HodeiClient(server) as client:
        client.cancel_job(running)


def test_jobs_whose_follow_failed_say_why_in_the_report(home: Path, tmp_path: Path) -> None:
    # Two jobs followed, the server killed under them: each testcase says what the follow met.
    server = ServerProcess(home)
    jobs = [submit(server.server, f"echo {name}; exec sleep 5") for name in ("one", "two")]
    report = tmp_path / "lost.xml"
    process = watching_until(
        [*STREAM_LOGS, "--server", server.server.target, "--no-reconnect", "--junit", str(report), *jobs],
        "[OUT] one",
        "[OUT] two",
    )
    server.process.kill()
    server.process.wait()
    assert process.wait(timeout=30) == ExitStatus.UNREACHABLE
    cases = list(next(iter(junitparser.JUnitXml.fromfile(str(report)))))
    assert sorted(case.name for case in cases) == sorted(jobs)
    for case in cases:
        (error,) = case.result
        assert isinstance(error, junitparser.Error)
        assert error.message.startswith("not followed to its end: cannot reach the Hodei server"), error.message


def test_outside_ci_the_output_is_as_it_was(server: Server) -> None:
    job_id = finished_job(server, ["one", "\x1b[0Ksection_start:1:x\r", "##[add-mask]x"], 2)
    plain = stream_logs(server, {}, "--no-timestamps", job_id)
    chosen_none = stream_logs(server, {**GITHUB, "GITLAB_CI": "true"}, "--ci", "none", "--no-timestamps", job_id)
    hodei_ci_none = stream_logs(server, {**GITHUB, "HODEI_CI": "none"}, "--no-timestamps", job_id)
    took = re.search(r"took (\S+), exited", plain.stderr)
    assert took, plain.stderr
    assert plain.stdout == "[OUT] one\n[OUT] \x1b[0Ksection_start:1:x\r\n[OUT] ##[add-mask]x\n"
    assert plain.stderr == (
        f"📡 Streaming logs for job: {job_id}\n{'─' * 64}\n"
        f"❌ stream ended: job FAILED, exit code 2, took {took[1]}, exited with status 2\n"
    )
    for other in (chosen_none, hodei_ci_none):
        assert (other.stdout, other.stderr, other.returncode) == (plain.stdout, plain.stderr, plain.returncode)


def pipeline(home: Path, env: dict[str, str], workspace: Path, *args: str) -> tuple[int, str]:
    """cicd_pipeline.sh run with a failing test stage: its status, and stdout then stderr."""
    workspace.mkdir(parents=True)
    options = ["--keep-going", "--break-tests", "--workspace", str(workspace), *args]
    run = run_bytes([str(SCRIPTS / "cicd_pipeline.sh"), *options], {"HODEI_STREAM_HOME": str(home), **env})
    return run.returncode, run.stdout + run.stderr


HOSTILE_FOLDER = "ws ##[set-output name=x;]y ##[add-mask]x ##[stop-commands]guess \x1b[0Ksection_start:1:e\r::error::f"


def test_the_pipeline_on_github_groups_stages_annotates_and_reports(home: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    report = tmp_path / "pipeline.xml"
    env = {**GITHUB, "GITHUB_STEP_SUMMARY": str(summary)}
    hostile_folder, benign_folder = home / HOSTILE_FOLDER, home / "ws plain"
    status, hostile = pipeline(home, env, hostile_folder, "--junit", str(report))
    benign_status, benign = pipeline(home, env, benign_folder)
    assert status == benign_status == 1
    read = read_as_github(hostile)
    # The project's paths end in the job's lines and in the script's own messages: all inert.
    assert normalised(read.commands, str(hostile_folder)) == normalised(
        read_as_github(benign).commands, str(benign_folder)
    )
    assert groups_balanced(read) and not read.stopped_at_end
    titles = [c.data for c in read.commands if c.name == "group"]
    assert titles == [
        f"▶ stage {n}/6: {stage}" for n, stage in enumerate(["checkout", "lint", "test", "build", "package"], 1)
    ]
    annotations = [(c.name, dict(c.properties)["title"]) for c in read.commands if c.name in ("error", "warning")]
    assert annotations == [("error", "▶ stage 3/6: test: FAILED"), ("warning", "stage deploy skipped")]
    markdown = summary.read_text()
    assert "### 📋 Pipeline summary" in markdown and "| test | " in markdown and "❌ FAILED |" in markdown
    suite = next(iter(junitparser.JUnitXml.fromfile(str(report))))
    cases = {case.name: case for case in suite}
    assert list(cases) == ["checkout", "lint", "test", "build", "package", "deploy"]
    assert [name for name, case in cases.items() if not case.is_passed] == ["test", "deploy"]
    (failure,) = cases["test"].result
    assert isinstance(failure, junitparser.Failure) and "exit code 1" in failure.message
    assert "\nFAILED (" in failure.text  # the last lines of the stage's log: unittest's verdict
    assert cases["deploy"].is_skipped and all(cases[name].time > 0 for name in ("checkout", "test"))


def test_the_pipeline_on_gitlab_folds_each_stage_once(home: Path, tmp_path: Path) -> None:
    status, output = pipeline(home, GITLAB, home / HOSTILE_FOLDER)
    assert status == 1
    sections = read_as_gitlab(output)
    assert len(sections) == 5 and len({section.name for section in sections}) == 5
    assert "❌ stage test FAILED" in output.split(f"section_end:{sections[2].end_s}:{sections[2].name}", 1)[1]


def test_an_unknown_hodei_ci_is_a_usage_error(server: Server, tmp_path: Path) -> None:
    job_id = finished_job(server, ["one"], 0)
    refused = stream_logs(server, {"HODEI_CI": "jenkins"}, job_id)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.count("\n") == 1 and "HODEI_CI='jenkins'" in refused.stderr
    nowhere = stream_logs(server, {}, "--junit", str(tmp_path / "missing" / "report.xml"), job_id)
    assert nowhere.returncode == 2 and "cannot write the JUnit report" in nowhere.stderr
    assert stream_logs(server, {}, "--ci", "github", "--json", job_id).returncode == 2


def test_json_lines_stay_json_in_a_ci(server: Server) -> None:
    job_id = finished_job(server, ["##[add-mask]x"], 0)
    lines = stream_logs(server, GITHUB, "--json", job_id).stdout.splitlines()
    assert [json.loads(line)["line"] for line in lines] == ["##[add-mask]x"]


@pytest.mark.timeout(300)
def test_the_pipeline_as_one_job_is_one_section_and_a_testcase_per_stage(
    platform: Platform, home: Path, tmp_path: Path
) -> None:
    report = tmp_path / "one-job.xml"
    options = ["--keep-going", "--break-tests", "--junit", str(report)]
    run = run_bytes(
        [str(SCRIPTS / "cicd_pipeline.sh"), *options],
        {"HODEI_STREAM_HOME": str(home), "HODEI_GRPC_URL": platform.url, **GITLAB},
    )
    assert run.returncode == 1, run.stdout[-3000:]
    (section,) = read_as_gitlab(run.stdout)
    assert "Pipeline summary" in run.stdout.split(f"section_end:{section.end_s}:{section.name}", 1)[1]
    cases = {case.name: case for case in next(iter(junitparser.JUnitXml.fromfile(str(report))))}
    assert list(cases) == ["checkout", "lint", "test", "build", "package", "deploy"]
    assert [name for name, case in cases.items() if not case.is_passed] == ["test", "deploy"]
    (failure,) = cases["test"].result
    assert isinstance(failure, junitparser.Failure) and "test failed" in failure.message
    assert cases["deploy"].is_skipped


def test_a_script_watching_in_the_background_keeps_its_messages_and_the_job_lines_inert(home: Path) -> None:
    run = run_bytes(
        [str(SCRIPTS / "cicd_simple.sh"), "--test", "--break-tests", "--background"],
        {"HODEI_STREAM_HOME": str(home), **GITHUB},
    )
    assert run.returncode == 1
    read = read_as_github(run.stdout + run.stderr)
    assert read.names() == ["group", "endgroup", "error"] and groups_balanced(read) and not read.stopped_at_end
    assert any("[STATUS] job" in line for line in read.shown)  # the status messages, in the log
    assert any("FAIL: test_discount_comes_off_before_vat" in line for line in read.shown)
