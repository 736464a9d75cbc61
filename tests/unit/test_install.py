"""install.sh recognises a current install from its stamp, a change to what an install depends
on (pyproject.toml, protos/, install.sh, the code generator) makes it stale, and what it prints
is plain text off a terminal and bold on one."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAMPED_GENERATOR = ("hodei_stream/proto/generate.py", "hodei_stream/proto/build_backend.py")


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """What install.sh --check reads, copied from this (installed) checkout."""
    for name in ("install.sh", "pyproject.toml", *STAMPED_GENERATOR):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    (tmp_path / ".venv").mkdir()
    shutil.copy2(ROOT / ".venv" / ".hodei-stream-stamp", tmp_path / ".venv" / ".hodei-stream-stamp")
    return tmp_path


def check(repo: Path, *options: str) -> int:
    return subprocess.run(["bash", str(repo / "install.sh"), "--check", *options], capture_output=True).returncode


def test_current_install_is_recognised(repo_copy: Path) -> None:
    assert check(repo_copy) == 0
    assert check(repo_copy, "--dev") == 0  # the tests run from a --dev install


@pytest.mark.parametrize("changed", ["protos/hodei.proto", "pyproject.toml", "install.sh", *STAMPED_GENERATOR])
def test_a_change_makes_the_install_stale(repo_copy: Path, changed: str) -> None:
    with (repo_copy / changed).open("a") as file:
        file.write("\n# changed\n")
    assert check(repo_copy) == 1


def test_unknown_option_is_a_usage_error(repo_copy: Path) -> None:
    result = subprocess.run(["bash", str(repo_copy / "install.sh"), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "install.sh: unknown option '--bogus' (try --help)"


def test_a_missing_python_is_one_line_with_the_fix(repo_copy: Path) -> None:
    (repo_copy / ".venv" / ".hodei-stream-stamp").unlink()
    result = subprocess.run(
        ["bash", str(repo_copy / "install.sh")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HODEI_PYTHON": "/nonexistent/python3"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        (
            "install.sh: /nonexistent/python3 not found; install Python 3.10 or newer"
            " (Debian/Ubuntu: apt-get install python3 python3-venv)"
        ),
    ]


def test_a_bad_installer_choice_is_a_usage_error(repo_copy: Path) -> None:
    (repo_copy / ".venv" / ".hodei-stream-stamp").unlink()
    result = subprocess.run(
        ["bash", str(repo_copy / "install.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "HODEI_INSTALLER": "conda"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "install.sh: HODEI_INSTALLER must be uv or pip, not 'conda'"


@pytest.fixture
def python_without_venv(tmp_path: Path) -> Path:
    """A "python3" that passes install.sh's checks and fails to make the venv: the run prints
    its first step and stops, in milliseconds."""
    fake = tmp_path / "fake-python3"
    fake.write_text(
        textwrap.dedent("""\
            #!/bin/sh
            case "$1" in
              -V) echo 'Python 3.11.0' ;;
              -m) echo 'no venv here' >&2; exit 1 ;;
            esac
        """)
    )
    fake.chmod(0o755)
    return fake


def first_step_output(repo: Path, python: Path, *, on_terminal: bool, no_color: bool = False) -> bytes:
    """install.sh's stderr up to the failed venv, written to a pipe or to a real pty."""
    (repo / ".venv" / ".hodei-stream-stamp").unlink(missing_ok=True)
    env = {"PATH": os.environ["PATH"], "HODEI_PYTHON": str(python), **({"NO_COLOR": "1"} if no_color else {})}
    if not on_terminal:
        return subprocess.run(["bash", str(repo / "install.sh")], capture_output=True, env=env, timeout=60).stderr
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            ["bash", str(repo / "install.sh")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=terminal,
            env=env,
        )
        os.close(terminal)
        output = b""
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            output += chunk
        process.wait(timeout=60)
        return output
    finally:
        os.close(controller)


def test_plain_text_off_a_terminal(repo_copy: Path, python_without_venv: Path) -> None:
    output = first_step_output(repo_copy, python_without_venv, on_terminal=False)
    assert b"install.sh: [1/3] creating " in output
    assert b"\x1b" not in output


def test_bold_step_names_on_a_terminal(repo_copy: Path, python_without_venv: Path) -> None:
    output = first_step_output(repo_copy, python_without_venv, on_terminal=True)
    assert b"\x1b[1minstall.sh:\x1b[0m [1/3] creating " in output


def test_no_color_keeps_a_terminal_plain(repo_copy: Path, python_without_venv: Path) -> None:
    output = first_step_output(repo_copy, python_without_venv, on_terminal=True, no_color=True)
    assert b"install.sh: [1/3] creating " in output
    assert b"\x1b" not in output
