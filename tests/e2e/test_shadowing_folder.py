"""Commands run from a folder that holds a ``hodei_stream`` package of its own (another
checkout, a user's project) still run the installed code: the embedded server they start,
the job's supervisor and a job script's streamer included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hodei_stream.state_folder import embedded_target, is_answering
from tests.jobs.scripts import SCRIPTS

HODEI = Path(sys.executable).with_name("hodei")  # the console script, as a user types it
SHADOW_MARK = "the current folder's hodei_stream ran"


@pytest.fixture
def shadowing_folder(tmp_path: Path) -> Path:
    """A folder whose ``hodei_stream`` package fails loudly on import."""
    package = tmp_path / "hodei_stream"
    (package / "server").mkdir(parents=True)
    for init in (package / "__init__.py", package / "server" / "__init__.py"):
        init.write_text(f"raise SystemExit({SHADOW_MARK!r})\n")
    return tmp_path


def run_in(folder: Path, home: Path, *command: str | Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HODEI_STREAM_HOME": str(home)}
    environment.pop("HODEI_GRPC_URL", None)
    return subprocess.run(
        [str(part) for part in command], cwd=folder, env=environment, capture_output=True, text=True, timeout=120
    )


def test_hodei_starts_the_installed_server_from_a_shadowing_folder(shadowing_folder: Path, home: Path) -> None:
    try:
        result = run_in(shadowing_folder, home, HODEI, "run", "--", "/bin/sh", "-c", "echo from the installed server")
        assert result.returncode == 0, result.stderr
        assert SHADOW_MARK not in result.stdout + result.stderr
        assert "from the installed server" in result.stdout
        assert is_answering(embedded_target(home))
    finally:
        run_in(shadowing_folder, home, HODEI.with_name("hodei-server"), "stop")


def test_a_job_script_streams_from_a_shadowing_folder(shadowing_folder: Path, home: Path) -> None:
    try:
        result = run_in(shadowing_folder, home, SCRIPTS / "cicd_simple.sh", "--build")
        assert result.returncode == 0, result.stderr
        assert SHADOW_MARK not in result.stdout + result.stderr
        assert "[OUT]" in result.stdout  # the streamer ran and showed the job's lines
    finally:
        run_in(shadowing_folder, home, HODEI.with_name("hodei-server"), "stop")
