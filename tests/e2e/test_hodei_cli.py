"""The ``hodei`` command end to end: a real embedded server, hodei as a subprocess, real
pipes (one closed before hodei writes)."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hodei_stream import cli
from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.environment import Environment
from hodei_stream.proto import hodei_pb2 as pb
from tests.conftest import wait_until

from .streaming import HODEI, STREAM_LOGS, read_timed, submit

STATUS_FIELDS = ["job_id", "name", "status", "exit_code", "error_message", "started_at", "ended_at", "duration_s"]


def hodei(server: Server, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HODEI, "--server", server.target, *args], capture_output=True, text=True, timeout=timeout)


def final_status_json(server: Server, job_id: str) -> dict[str, object]:
    with HodeiClient(server) as client:
        client.wait_final(job_id)
    result = hodei(server, "status", "--json", job_id)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_status_json_has_numbers_and_nulls(server: Server) -> None:
    completed = final_status_json(server, submit(server, "echo ok", name="fine"))
    assert list(completed) == STATUS_FIELDS
    assert completed["status"] == "COMPLETED" and completed["exit_code"] == 0
    assert completed["error_message"] is None
    assert isinstance(completed["duration_s"], float) and completed["duration_s"] >= 0
    assert isinstance(completed["started_at"], str) and isinstance(completed["ended_at"], str)
    failed = final_status_json(server, submit(server, "exit 3"))
    assert failed["status"] == "FAILED" and failed["exit_code"] == 3
    killed = final_status_json(server, submit(server, "kill -TERM $$"))
    assert killed["exit_code"] == 143

    running = submit(server, "sleep 30")
    with HodeiClient(server) as client:
        try:
            result = hodei(server, "status", "--json", running.upper())  # any case is the job's id
            report = json.loads(result.stdout)
            assert report["job_id"] == running
            assert report["status"] in ("PENDING", "QUEUED", "ASSIGNED", "RUNNING")
            assert report["exit_code"] is None and report["ended_at"] is None and report["duration_s"] is None
        finally:
            client.cancel_job(running)


def test_error_message_of_a_failed_job_in_status_json_and_on_the_end_line(server: Server) -> None:
    with HodeiClient(server) as client:
        job_id = client.queue_job("no such command", "/nonexistent/command", [])
    report = final_status_json(server, job_id)
    assert report["status"] == "FAILED"
    assert "cannot start '/nonexistent/command'" in str(report["error_message"])
    people = hodei(server, "status", job_id)
    assert "error_message: cannot start '/nonexistent/command'" in people.stdout
    end = subprocess.run([*STREAM_LOGS, "--server", server.target, job_id], capture_output=True, text=True, timeout=60)
    assert end.returncode == 1
    last = end.stderr.splitlines()[-1]
    assert "job FAILED" in last and "cannot start '/nonexistent/command'" in last


def test_cancel_reason_in_status_and_on_the_end_line(server: Server) -> None:
    job_id = submit(server, "sleep 30")
    cancelled = hodei(server, "cancel", job_id, "--reason", "wrong branch deployed")
    assert cancelled.returncode == 0, cancelled.stderr
    report = final_status_json(server, job_id)
    assert report["status"] == "CANCELLED"
    if not report["error_message"]:
        pytest.skip("this server does not record cancel reasons (the store fills error_message)")
    assert "wrong branch deployed" in str(report["error_message"])
    people = hodei(server, "status", job_id)
    assert "wrong branch deployed" in people.stdout and "error_message" in people.stdout
    end = subprocess.run([*STREAM_LOGS, "--server", server.target, job_id], capture_output=True, text=True, timeout=60)
    assert end.returncode == 1
    assert "job CANCELLED" in end.stderr.splitlines()[-1] and "wrong branch deployed" in end.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--timeout", "-3", "--", "true"], "argument --timeout: -3 is out of range"),
        (["submit", "--timeout", "0", "--", "true"], "argument --timeout: 0 is out of range"),
        (["submit", "--timeout", "nan", "--", "true"], "argument --timeout: nan is out of range"),
        (["submit", "--timeout", "inf", "--", "true"], "argument --timeout: inf is out of range"),
        (["submit", "--timeout", "1e308", "--", "true"], "argument --timeout: 1e308 is out of range"),
        (["submit", "--timeout", "2073601", "--", "true"], "at most 2073600s"),
        (["submit", "--timeout", "soon", "--", "true"], "argument --timeout: 'soon' is not a number"),
        (["list", "--limit", "0"], "argument --limit: 0 is out of range"),
        (["list", "--limit", "1001"], "at most 1000"),
        (["list", "--status", "done"], "argument --status: 'done' is not a status (one of PENDING, QUEUED,"),
        (["list", "--status", "failed,"], "argument --status: 'failed,' is not a status"),
        (["list", "--name", "etl-("], "argument --name: 'etl-(' is not a regular expression"),
        (["status"], "the following arguments are required: JOB_ID"),
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(home: Path, args: list[str], message: str) -> None:
    result = subprocess.run([*HODEI, *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()  # no usage block, no help
    assert line.startswith("hodei") and message in line and line.endswith("--help)")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--junit", "/nonexistent/report.xml"], "hodei: cannot write the JUnit report /nonexistent/report.xml:"),
        (["--stream-option=--output=/nonexistent/log.txt"], "hodei: cannot write /nonexistent/log.txt:"),
        (["--stream-option=--grep=("], "hodei: bad --grep pattern: missing )"),
        (["--stream-option=--frobnicate"], "stream-logs: unrecognized arguments: --frobnicate"),
        (["--stream-option=--json", "--ci", "github"], "--json is for a program, not for a CI's log"),
    ],
)
def test_run_refuses_the_streamers_bad_options_before_it_submits(
    server: Server, options: list[str], message: str
) -> None:
    result = hodei(server, "run", *options, "--", "true")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert message in line
    with HodeiClient(server) as client:
        assert not client.list_jobs().jobs  # no job was submitted to run unwatched


def test_bad_job_id_is_one_line(server: Server) -> None:
    result = hodei(server, "status", "not-a-uuid")
    assert result.returncode == 2 and result.stderr == "hodei: 'not-a-uuid' is not a job id (expected a UUID)\n"
    missing = hodei(server, "status", str(uuid.uuid4()).upper())
    assert missing.returncode == 3 and len(missing.stderr.splitlines()) == 1


def test_version_is_the_packages(home: Path) -> None:
    result = subprocess.run([*HODEI, "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout == f"hodei (hodei-stream) {importlib.metadata.version('hodei-stream')}\n"


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--limit", "100"],
        ["list", "--limit", "100", "--wide"],
        ["list", "--limit", "100", "--json"],
        ["status", "JOB"],
        ["status", "--json", "JOB"],
        ["submit", "--", "true"],
        ["--version"],
        ["--help"],
    ],
)
def test_quiet_on_a_closed_pipe(server: Server, args: list[str]) -> None:
    job_id = submit(server, "echo hi")
    for _ in range(30):  # more than one line of `list` to write
        submit(server, "true")
    reader, writer = os.pipe()
    os.close(reader)  # the reader left before hodei writes: every write meets EPIPE
    try:
        command = [*HODEI, "--server", server.target, *(job_id if arg == "JOB" else arg for arg in args)]
        result = subprocess.run(command, stdout=writer, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert "Exception ignored" not in result.stderr
    assert result.returncode == 0


def test_list_into_head(server: Server) -> None:
    for _ in range(40):
        submit(server, "true")
    shell = f"{' '.join(HODEI)} --server {server.target} list --limit 100 | head -1; exit ${{PIPESTATUS[0]}}"
    for _ in range(5):  # the race between head's exit and our write goes both ways: try it a few times
        result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and len(result.stdout.splitlines()) == 1
        assert "Error" not in result.stderr, result.stderr


def test_names_with_escape_sequences_are_shown_escaped_on_a_terminal(server: Server) -> None:
    job_id = submit(server, "true", name="evil \033]0;owned\007 \033[2J name")
    with HodeiClient(server) as client:
        client.wait_final(job_id)
    for args in (["list"], ["status", job_id]):
        on_tty = read_timed([*HODEI, "--server", server.target, *args], tty=True)
        assert on_tty.status == 0
        assert any("evil \\x1b]0;owned\\x07 \\x1b[2J name" in text for text in on_tty.texts), on_tty.texts
        assert not any("\033" in text for text in on_tty.texts)
    piped = hodei(server, "status", "--json", job_id)
    assert json.loads(piped.stdout)["name"] == "evil \033]0;owned\007 \033[2J name"


def test_the_environment_given_decides_the_escaping_not_the_real_terminal(server: Server) -> None:
    """hodei reads whether stdout is a terminal once, from the Environment its main is handed:
    the same command escapes for a terminal and gives the exact text to a pipe."""
    name = "evil \033[2J name"
    job_id = submit(server, "true", name=name)
    with HodeiClient(server) as client:
        client.wait_final(job_id)
    shown = {}
    for terminal in (True, False):
        stdout, stderr = io.StringIO(), io.StringIO()
        env = Environment.made_of(io.StringIO(), stdout, stderr, terminal, terminal, dict(os.environ))
        assert cli.main(["--server", server.target, "status", job_id], env) == 0
        shown[terminal] = stdout.getvalue()
    assert "evil \\x1b[2J name" in shown[True] and "\033" not in shown[True], shown
    assert name in shown[False], shown


def test_hodei_run_interrupted_leaves_the_job_and_says_how_to_watch_it(server: Server) -> None:
    script = "for i in $(seq 1 600); do echo alive $i; sleep 0.1; done"
    process = subprocess.Popen(
        [*HODEI, "--server", server.target, "run", "--", "bash", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "alive 1" in process.stdout.readline()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    hint = err.strip().splitlines()[-1]
    job_id = hint.split()[-1]
    assert "the job goes on. Watch it again with: " in hint and "stream-logs" in hint and "Traceback" not in err
    with HodeiClient(server) as client:
        assert client.get_job(job_id).status == pb.JOB_STATUS_RUNNING
        client.cancel_job(job_id)


@pytest.fixture
def three_jobs(server: Server) -> Iterator[dict[str, str]]:
    """A completed, a failed (exit 3, tagged) and a running job, by name; the running one is
    cancelled afterwards."""
    with HodeiClient(server) as client:
        jobs = {
            "fine": client.queue_job("fine", "/bin/bash", ["-c", "echo ok"], tags=["cicd"]),
            "broken job": client.queue_job("broken job", "/bin/bash", ["-c", "exit 3"], tags=["cicd", "etl"]),
            "still going": client.queue_job("still going", "/bin/bash", ["-c", "sleep 60"]),
        }
        client.wait_final(jobs["fine"])
        client.wait_final(jobs["broken job"])
        wait_until(lambda: client.get_job(jobs["still going"]).status == pb.JOB_STATUS_RUNNING, 30, "a running job")
        try:
            yield jobs
        finally:
            client.cancel_job(jobs["still going"])


def table(server: Server, *args: str) -> list[dict[str, str]]:
    """``hodei list``'s rows as {column: cell}, each cell read at its header's offset (so a
    row out of alignment reads wrong)."""
    result = hodei(server, "list", *args)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    names = header.split()
    starts = [header.index(name) for name in names]
    columns = list(zip(names, starts, [*starts[1:], None], strict=True))
    return [{name: row[start:end].strip() for name, start, end in columns} for row in rows]


def test_list_columns_are_aligned_with_exit_code_age_and_duration(three_jobs: dict[str, str], server: Server) -> None:
    rows = table(server)
    assert [row["NAME"] for row in rows] == ["still going", "broken job", "fine"]  # newest first
    by_name = {row["NAME"]: row for row in rows}
    assert {name: by_name[name]["ID"] for name in three_jobs} == three_jobs
    assert [by_name[name]["STATUS"] for name in three_jobs] == ["COMPLETED", "FAILED", "RUNNING"]
    assert [by_name[name]["EXIT"] for name in three_jobs] == ["0", "3", "-"]
    assert by_name["still going"]["DURATION"] == "-"  # start to end: none until it ends
    for name in ("fine", "broken job"):
        assert by_name[name]["DURATION"].endswith("s") and float(by_name[name]["DURATION"][:-1]) < 30
    assert all(row["AGE"][:-1].isdigit() and row["AGE"][-1] in "smhd" for row in rows)
    assert "TAGS" not in rows[0]
    wide = {row["NAME"]: row["TAGS"] for row in table(server, "--wide")}
    assert wide == {"fine": "cicd", "broken job": "cicd,etl", "still going": "-"}


def test_list_json_is_status_json_per_line(three_jobs: dict[str, str], server: Server) -> None:
    result = hodei(server, "list", "--json")
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [report["name"] for report in reports] == ["still going", "broken job", "fine"]
    for report in reports:
        assert list(report) == STATUS_FIELDS
        if report["status"] != "RUNNING":  # a running job's report is the same only once it ended
            assert report == final_status_json(server, str(report["job_id"]))
    assert reports[1]["exit_code"] == 3 and reports[0]["exit_code"] is None


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--status", "failed"], ["broken job"]),
        (["--status", "Completed,FAILED"], ["broken job", "fine"]),
        (["--status", "running", "--status", "completed"], ["still going", "fine"]),
        (["--status", "timeout"], []),
        (["--name", "going"], ["still going"]),
        (["--name", "^(fine|broken)"], ["broken job", "fine"]),
        (["--name", "^b", "--status", "completed"], []),
        (["--tag", "cicd"], ["broken job", "fine"]),
        (["--tag", "cicd", "--tag", "etl"], ["broken job"]),
        (["--tag", "cicd", "--limit", "1"], ["broken job"]),
        (["--limit", "2"], ["still going", "broken job"]),
    ],
)
def test_list_filters(three_jobs: dict[str, str], server: Server, args: list[str], names: list[str]) -> None:
    assert [row["NAME"] for row in table(server, *args)] == names
    result = hodei(server, "list", "--json", *args)
    assert [json.loads(line)["name"] for line in result.stdout.splitlines()] == names
