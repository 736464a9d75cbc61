"""CI/CD job payload: check out, lint, test, build, package and deploy a small Python project.

Shipped to a worker as the body of a job (see ``hodei_stream.jobs.payload``): Python's
standard library only, run with ``python3 -u``.  The project (``samples/cicd``) arrives in the
job's bundle (``$HODEI_BUNDLE_DIR/cicd``); every stage works in one workspace, so the stages
can run in one job (``cicd_simple.sh``) or each in a job of its own (``cicd_pipeline.sh``).

    python3 -u cicd.py --workspace DIR --artifacts DIR [--break-tests] STAGE [STAGE ...]

Stages: checkout (copy the source into DIR/src, record its tree hash), lint (syntax, tabs,
trailing blanks, line length), test (the project's unittest suite), build (byte-compile into
DIR/build), package (DIR/dist/NAME-VERSION.tar.gz and its .sha256), deploy (copy the package
into ARTIFACTS/NAME/VERSION/ with its checksum, verify the copy, import it from there).
Exit status 0 when every stage passed, 1 when one failed (the reason on stderr), 2 on bad
arguments.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_NAME = "pricing"
BUNDLE_DIR_ENV = "HODEI_BUNDLE_DIR"  # where hodei_stream.jobs.payload unpacks the job's bundle
MAX_LINE_LENGTH = 100
# --break-tests: a real bug, planted at checkout, that the test suite must catch.
BUG = ("return self.subtotal - self.discount + self.vat", "return self.subtotal + self.vat")


@dataclass(frozen=True)
class Settings:
    """What every stage may need; most use only the workspace."""

    workspace: Path
    artifacts: Path | None = None
    break_tests: bool = False


class StageFailed(Exception):
    """A stage found a problem; the message is the one line the user reads."""


def say(message: str) -> None:
    print(message, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def source_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts)


def version_of(workspace: Path) -> str:
    version_file = workspace / "src" / "VERSION"
    require(version_file, "checkout")
    return version_file.read_text(encoding="utf-8").strip()


def package_path(workspace: Path) -> Path:
    return workspace / "dist" / f"{PROJECT_NAME}-{version_of(workspace)}.tar.gz"


def require(path: Path, stage: str) -> None:
    if not path.exists():
        raise StageFailed(f"{path} is missing: run the {stage} stage first")


def checkout(settings: Settings) -> None:
    workspace = settings.workspace
    bundle = os.environ.get(BUNDLE_DIR_ENV)
    if not bundle:
        raise StageFailed(f"no project to check out: ${BUNDLE_DIR_ENV} is not set (the job carries none)")
    source, target = Path(bundle) / "cicd", workspace / "src"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    if settings.break_tests:
        cart = target / PROJECT_NAME / "cart.py"
        text = cart.read_text(encoding="utf-8")
        if BUG[0] not in text:
            raise StageFailed(f"--break-tests: {cart} no longer has the line to break")
        cart.write_text(text.replace(*BUG), encoding="utf-8")
        say(f"      --break-tests: {cart.relative_to(target)} now forgets the discount in the total")
    files = source_files(target)
    tree = hashlib.sha256()
    for path in files:
        tree.update(f"{path.relative_to(target)}\0{sha256_of(path)}\n".encode())
    revision = tree.hexdigest()[:12]
    (workspace / "checkout.json").write_text(json.dumps({"revision": revision, "files": len(files)}), encoding="utf-8")
    say(f"      ✔ {len(files)} files of {PROJECT_NAME} {version_of(workspace)} in {target} (tree {revision})")


def lint(settings: Settings) -> None:
    source = settings.workspace / "src"
    require(source, "checkout")
    problems: list[str] = []
    files = [path for path in source_files(source) if path.suffix == ".py"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(source)
        try:
            compile(text, str(name), "exec")
        except SyntaxError as error:
            problems.append(f"{name}:{error.lineno}: syntax error: {error.msg}")
        for number, line in enumerate(text.splitlines(), start=1):
            if "\t" in line:
                problems.append(f"{name}:{number}: tab character")
            if line != line.rstrip():
                problems.append(f"{name}:{number}: trailing whitespace")
            if len(line) > MAX_LINE_LENGTH:
                problems.append(f"{name}:{number}: line longer than {MAX_LINE_LENGTH} characters ({len(line)})")
    for problem in problems:
        print(f"      {problem}", file=sys.stderr, flush=True)
    if problems:
        raise StageFailed(f"lint found {len(problems)} problem(s) in {len(files)} files")
    say(f"      ✔ {len(files)} Python files: syntax, tabs, trailing whitespace, line length ≤ {MAX_LINE_LENGTH}")


def test(settings: Settings) -> None:
    source = settings.workspace / "src"
    require(source, "checkout")
    # The suite in a child interpreter, so that its output (unittest writes to stderr)
    # reaches the job's log as it runs, and the project is imported fresh from the checkout.
    result = subprocess.run(
        [sys.executable, "-u", "-m", "unittest", "discover", "-v", "-s", "tests", "-t", "."],
        cwd=source,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    if result.returncode != 0:
        raise StageFailed("the test suite failed (see the failures above)")
    say("      ✔ the test suite passed")


def build(settings: Settings) -> None:
    source, output = settings.workspace / "src", settings.workspace / "build"
    require(source, "checkout")
    shutil.rmtree(output, ignore_errors=True)
    shutil.copytree(source / PROJECT_NAME, output / PROJECT_NAME)
    shutil.copy2(source / "VERSION", output / "VERSION")
    if not compileall.compile_dir(output, quiet=1, force=True):
        raise StageFailed("byte-compiling failed")
    compiled = sorted(output.rglob("*.pyc"))
    say(f"      ✔ byte-compiled {len(compiled)} modules into {output}")


def package(settings: Settings) -> None:
    workspace = settings.workspace
    output = workspace / "build"
    require(output, "build")
    archive = package_path(workspace)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in source_files(output) + sorted(output.rglob("*.pyc")):
            tar.add(path, arcname=str(path.relative_to(output)))
    checksum = sha256_of(archive)
    archive.with_name(archive.name + ".sha256").write_text(f"{checksum}  {archive.name}\n", encoding="utf-8")
    say(f"      ✔ {archive} ({archive.stat().st_size:,} bytes)")
    say(f"      ✔ sha256 {checksum}")


def deploy(settings: Settings) -> None:
    workspace, artifacts = settings.workspace, settings.artifacts
    if artifacts is None:
        raise StageFailed("deploy needs an artifact folder (--artifacts)")
    require(workspace / "dist", "package")
    archive = package_path(workspace)
    require(archive, "package")
    recorded = archive.with_name(archive.name + ".sha256").read_text(encoding="utf-8").split()[0]
    target = artifacts / PROJECT_NAME / version_of(workspace)
    target.mkdir(parents=True, exist_ok=True)
    deployed = Path(shutil.copy2(archive, target / archive.name))
    shutil.copy2(archive.with_name(archive.name + ".sha256"), target)
    say(f"      copied to {deployed}")
    if sha256_of(deployed) != recorded:
        raise StageFailed(f"the deployed copy's sha256 differs from the package's ({recorded})")
    say(f"      ✔ checksum verified: {recorded}")
    # The deployed package must work from where it landed: unpack it and use it.
    with tempfile.TemporaryDirectory() as unpacked:
        with tarfile.open(deployed) as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.12+, and 3.10/3.11 security releases
                tar.extractall(unpacked, filter="data")
            else:
                tar.extractall(unpacked)
        check = "from pricing import Cart; c = Cart(); c.add('X', '10.00'); print(c.total)"
        total = subprocess.run([sys.executable, "-c", check], cwd=unpacked, capture_output=True, text=True, check=False)
    if total.returncode != 0 or total.stdout.strip() != "12.10":
        raise StageFailed(f"the deployed package does not work: {total.stderr.strip() or total.stdout.strip()}")
    say(f"      ✔ smoke test from the deployed package: a 10.00 cart totals {total.stdout.strip()}")


STAGES = {"checkout": checkout, "lint": lint, "test": test, "build": build, "package": package, "deploy": deploy}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cicd", description="Check out, lint, test, build, package, deploy.")
    parser.add_argument("stages", nargs="+", choices=STAGES, metavar="STAGE", help=", ".join(STAGES))
    parser.add_argument("--workspace", type=Path, required=True, help="the folder every stage works in")
    parser.add_argument("--artifacts", type=Path, help="where deploy puts packages (NAME/VERSION/)")
    parser.add_argument("--break-tests", action="store_true", help="at checkout, plant a bug the tests catch")
    args = parser.parse_args(argv)
    # Absolute, so that the log names the folders where they are on the worker.
    settings = Settings(args.workspace.absolute(), args.artifacts and args.artifacts.absolute(), args.break_tests)
    started = time.monotonic()
    stage = args.stages[0]
    try:
        settings.workspace.mkdir(parents=True, exist_ok=True)
        for number, stage in enumerate(args.stages, start=1):
            say(f"[{number}/{len(args.stages)}] {stage}")
            STAGES[stage](settings)
    except (StageFailed, OSError, tarfile.TarError) as error:
        print(f"❌ {stage} failed: {error}", file=sys.stderr, flush=True)
        return 1
    say(f"✅ {', '.join(args.stages)} completed in {time.monotonic() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
