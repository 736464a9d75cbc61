"""install.sh recognises a current install from its stamp, and a change to what an install
depends on (pyproject.toml, protos/, install.sh) makes it stale."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """What install.sh --check reads, copied from this (installed) checkout."""
    for name in ("install.sh", "pyproject.toml"):
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


@pytest.mark.parametrize("changed", ["protos/hodei.proto", "pyproject.toml", "install.sh"])
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
        "install.sh: /nonexistent/python3 not found; install Python 3.10 or newer"
        " (Debian/Ubuntu: apt-get install python3 python3-venv)"
    ]
