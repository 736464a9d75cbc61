"""The wheel built from the checkout is complete and works anywhere.

``pip wheel --no-deps`` of the checkout's files (as a fresh clone has them, plus this work
tree's changes) must carry the generated gRPC code and every file the job scripts ship;
installed into a fresh venv outside the tree, its commands must run a job on the embedded
server and a job script's module end to end.  The sdist carries protos/ (not generated
code) and builds the same complete wheel.  Slow by nature (builds in isolated environments,
a venv, an install from the registry): 20-90 s here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the job scripts send to their jobs, read from the installed package at run time.
SHIPPED_TREES = ("hodei_stream/jobs/samples/", "hodei_stream/jobs/payloads/")
GENERATED = tuple(
    f"hodei_stream/proto/{name}" for name in ("hodei_pb2.py", "hodei_pb2.pyi", "hodei_pb2_grpc.py", "hodei_grpc.py")
)
# pip's words when the registry cannot be reached: the machine's fault, not the package's.
OFFLINE_SIGNS = (
    "No matching distribution found",
    "Could not find a version",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Max retries exceeded",
)
BUILD_TIMEOUT_S = 600
COMMAND_TIMEOUT_S = 180


def checkout_files() -> list[str]:
    """The files a fresh clone has, plus this work tree's new and changed ones (git's view)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the checkout's files cannot be listed")
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listing.returncode != 0:
        pytest.skip(f"not a git checkout ({listing.stderr.decode(errors='replace').strip()})")
    return [name for name in listing.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def run_or_skip_offline(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if any(sign in output for sign in OFFLINE_SIGNS):
            pytest.skip(f"{what}: the package registry is not reachable from this machine")
        pytest.fail(f"{what} failed ({result.returncode}):\n{output[-4000:]}")
    return result


def pip_wheel(source: Path, out: Path) -> Path:
    """``pip wheel --no-deps`` of a source folder or sdist: the build runs isolated, with
    [build-system].requires from the registry, as it does for any user (the checkout's venv
    has pip: install.sh installs it)."""
    run_or_skip_offline(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        "pip wheel",
    )
    (built,) = out.glob("hodei_stream-*.whl")
    return built


def uv_or_none() -> str | None:
    """uv where install.sh found or fetched it (sharing its warm cache), else on PATH."""
    bundled = ROOT / ".venv" / "tools" / "bin" / "uv"
    return str(bundled) if bundled.exists() else shutil.which("uv")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("clone")
    for name in checkout_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    return source


@pytest.fixture(scope="module")
def wheel(clone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pip_wheel(clone, tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the tree with the wheel installed; its bin folder.  Installed
    with uv where there is one (no pip needed in the venv), else with pip."""
    venv = tmp_path_factory.mktemp("venv")
    uv = uv_or_none()
    pip_option = ["--without-pip"] if uv else []
    subprocess.run(
        [sys.executable, "-m", "venv", "--clear", *pip_option, str(venv)], check=True, timeout=BUILD_TIMEOUT_S
    )
    python = venv / "bin" / "python"
    installer = [uv, "pip", "install", "--python", str(python)] if uv else [str(python), "-m", "pip", "install"]
    run_or_skip_offline([*installer, str(wheel)], "installing the wheel")
    return venv / "bin"


def test_wheel_carries_the_generated_code_and_every_shipped_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {name for name in checkout_files() if name.startswith(SHIPPED_TREES)}
    assert shipped, "no sample or payload files found in the checkout"
    assert sorted(shipped - names) == []
    assert sorted(set(GENERATED) - names) == []
    assert [name for name in names if "__pycache__" in name or name.endswith(".pyc")] == []


def test_sdist_carries_the_protos_and_builds_a_complete_wheel(clone: Path, tmp_path: Path) -> None:
    uv = uv_or_none()
    if uv is None:
        pytest.skip("uv is not installed (pip cannot build an sdist): ./install.sh fetches it")
    run_or_skip_offline([uv, "build", "--sdist", "--out-dir", str(tmp_path / "dist"), str(clone)], "uv build --sdist")
    (sdist,) = (tmp_path / "dist").glob("hodei_stream-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "protos/hodei.proto" in names
    assert sorted(names & set(GENERATED)) == [], "the sdist must carry the protos, not generated code"

    rebuilt = zipfile.ZipFile(pip_wheel(sdist, tmp_path / "wheelhouse")).namelist()
    assert sorted(set(GENERATED) - set(rebuilt)) == []


def test_installed_wheel_runs_a_job_and_a_job_script(installed: Path, home: Path, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "HODEI_TOKEN", "HODEI_TLS_CA")}

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        # tmp_path as the working folder: nothing there can shadow the installed package.
        return subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )

    try:
        where = run(str(installed / "python"), "-c", "import hodei_stream.proto.hodei_pb2 as m; print(m.__file__)")
        assert where.returncode == 0, where.stderr
        assert Path(where.stdout.strip()).is_relative_to(installed.parent)

        assert run(str(installed / "stream-logs"), "--help").returncode == 0

        job = run(str(installed / "hodei"), "run", "--", "echo", "hello from the wheel")
        assert job.returncode == 0, job.stdout + job.stderr
        assert "hello from the wheel" in job.stdout

        # The CI/CD job ships samples/cicd (VERSION included) and deploys into home/artifacts.
        script = run(str(installed / "python"), "-m", "hodei_stream.jobs.cicd_simple", "--all")
        assert script.returncode == 0, script.stdout[-3000:] + script.stderr[-3000:]
        assert "✅ COMPLETED" in script.stdout + script.stderr
        version = (ROOT / "hodei_stream/jobs/samples/cicd/VERSION").read_text().strip()
        assert list((home / "artifacts" / "pricing" / version).glob("*.tar.gz")), "the deploy stage left no package"
    finally:
        stopped = run(str(installed / "hodei-server"), "stop")
        assert stopped.returncode == 0, stopped.stderr
