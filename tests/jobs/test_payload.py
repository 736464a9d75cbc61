"""The payload builder: a ``bash -c`` script carries any payload text, args and env intact."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hodei_stream.jobs.payload import (
    HEREDOC_DELIMITER,
    INTERPRETERS,
    MAX_SCRIPT_BYTES,
    PayloadError,
    bash_script,
    job_spec,
)

# A bash payload that prints its own text exactly (bash -c keeps it in BASH_EXECUTION_STRING)
# and stops before the arbitrary text that follows is ever parsed.
ECHO_SELF = 'printf %s "$BASH_EXECUTION_STRING"; exit 0\n'
NASTY_LINES = [
    HEREDOC_DELIMITER,
    f"{HEREDOC_DELIMITER}_1",
    "EOF",
    "$(touch /tmp/should-not-exist) `id` ${HOME} $'\\n'",
    "'single' \"double\" \\backslash\\ trailing  ",
    "\ttab\tand unicode: ñ 📡 ✅",
    "carriage\rreturn",
]


def run_bash(script: str) -> subprocess.CompletedProcess[str]:
    # Bytes, decoded by hand: text=True would turn a payload's \r into \n.
    result = subprocess.run(["/bin/bash", "-c", script], capture_output=True, timeout=30, check=False)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def test_payload_text_with_shell_syntax_and_delimiter_lines_arrives_byte_exact() -> None:
    text = ECHO_SELF + "\n".join(NASTY_LINES) + "\n"
    result = run_bash(bash_script(text, INTERPRETERS[".sh"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout == text


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")))
def test_any_payload_text_round_trips(tail: str) -> None:
    text = ECHO_SELF + tail
    result = run_bash(bash_script(text, INTERPRETERS[".sh"]))
    assert result.returncode == 0, result.stderr
    # The builder ends the payload with a newline (the heredoc needs one); nothing else changes.
    assert result.stdout == (text if text.endswith("\n") else text + "\n")


def test_python_payload_gets_its_args_and_env_unchanged(tmp_path: Path) -> None:
    payload = tmp_path / "show.py"
    payload.write_text("import json, os, sys\nprint(json.dumps([sys.argv[1:], os.environ['JOB_SETTING']]))\n")
    args = ["", "two words", "$HOME", "'\"", "--flag=x", "ñ 📡", "line\nbreak", "*"]
    setting = "a value with 'quotes', $VARS and\nnewlines"
    spec = job_spec(payload, args, {"JOB_SETTING": setting})
    assert (spec.command, spec.arguments[0]) == ("/bin/bash", "-c")
    result = subprocess.run([spec.command, *spec.arguments], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [args, setting]


def test_the_payloads_exit_status_is_the_jobs(tmp_path: Path) -> None:
    payload = tmp_path / "fail.py"
    payload.write_text("import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
    spec = job_spec(payload)
    result = subprocess.run([spec.command, *spec.arguments], capture_output=True, text=True, timeout=30, check=False)
    assert (result.returncode, result.stderr) == (3, "boom\n")


def test_python_payloads_run_unbuffered(tmp_path: Path) -> None:
    """The first line must leave the job before the job ends, though stdout is a pipe."""
    payload = tmp_path / "slow.py"
    payload.write_text("import sys\nprint('first')\nsys.stdin.readline()\nprint('second')\n")
    spec = job_spec(payload)
    process = subprocess.Popen(
        [spec.command, *spec.arguments], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        assert process.stdout.readline() == "first\n"  # would block forever if buffered
        process.stdin.write("go on\n")
        process.stdin.close()
        assert process.stdout.read() == "second\n"
    finally:
        process.stdin.close()
        assert process.wait(timeout=30) == 0


@pytest.mark.parametrize(
    ("name", "text", "env", "complaint"),
    [
        ("job.rb", "puts 1\n", {}, "no interpreter"),
        ("job.py", "x = 1\0\n", {}, "NUL"),
        ("job.py", "x = 1\n", {"BAD-NAME": "1"}, "not an environment variable name"),
        ("job.py", "#" * MAX_SCRIPT_BYTES + "\n", {}, "may not exceed"),
    ],
)
def test_payloads_that_cannot_be_jobs_are_refused_with_the_reason(
    tmp_path: Path, name: str, text: str, env: dict[str, str], complaint: str
) -> None:
    payload = tmp_path / name
    payload.write_text(text)
    with pytest.raises(PayloadError, match=complaint):
        job_spec(payload, env=env)


def test_a_bundle_arrives_whole_under_its_own_folder_and_is_removed_after(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "data.bin").write_bytes(bytes(range(256)) * 64)
    (project / "target").mkdir()  # build output: left out of the bundle
    (project / "target" / "old.jar").write_bytes(b"stale")
    payload = tmp_path / "show.sh"
    payload.write_text('cd "$HODEI_BUNDLE_DIR"; find . -type f | sort; sha256sum project/src/data.bin; pwd\n')
    result = run_bash(job_spec(payload, bundle=[project]).arguments[1])
    assert result.returncode == 0, result.stderr
    *files, checksum, bundle_dir = result.stdout.splitlines()
    assert files == ["./project/src/data.bin"]
    assert checksum.split()[0] == hashlib.sha256((project / "src" / "data.bin").read_bytes()).hexdigest()
    assert not Path(bundle_dir).exists(), "the bundle folder outlives the job"


def test_a_bundle_is_compressed_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "big.txt"
    text.write_text("the same line, many times over\n" * 20_000)  # 600 KB, far over one argument
    script = bash_script("true\n", INTERPRETERS[".sh"], bundle=[text])
    assert len(script.encode()) < MAX_SCRIPT_BYTES // 10
    with pytest.raises(PayloadError, match="no such file or folder"):
        bash_script("true\n", INTERPRETERS[".sh"], bundle=[tmp_path / "missing"])
