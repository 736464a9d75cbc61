"""Turn a payload file into a job any Hodei worker can run: ``/bin/bash -c SCRIPT``.

The platform's own scripts submit shell jobs as ``command: "/bin/bash"``, ``arguments:
["-c", SCRIPT]``, and the worker that runs them has bash and python3 but nothing of this
project.  So the payload travels inside SCRIPT: a quoted heredoc read into a variable (no
expansion, byte-exact, no helper programs), then handed to its interpreter with ``-c`` so
the job's own stdin stays free for what it runs.  ``GetJob`` therefore shows the whole job
as readable text.

    >>> spec = job_spec(payload_file("etl.py"), args=["--records", "5000"], env={"ETL_WORK_DIR": "/tmp/w"})
    >>> spec.command, spec.arguments[0]
    ('/bin/bash', '-c')

The interpreter follows the file's suffix: ``.py`` runs under ``python3 -u`` (unbuffered, so
each print leaves the job at once), ``.sh`` under ``bash``.

A job that needs files besides its payload (a sample project, a module the payload imports)
takes them as a *bundle*: the files and folders are packed as tar + gzip + base64 into a
second heredoc, unpacked on the worker by python3's ``tarfile`` into a temporary folder named
by ``$HODEI_BUNDLE_DIR`` and removed when the job ends.  Compressed, a bundle of source code
takes about a quarter of its size out of the script's 128 KiB.
"""

from __future__ import annotations

import base64
import io
import re
import shlex
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PAYLOADS_DIR = Path(__file__).with_name("payloads")
HEREDOC_DELIMITER = "HODEI_PAYLOAD_EOF"
# Linux refuses a single exec argument longer than MAX_ARG_STRLEN (32 memory pages = 128 KiB), and
# SCRIPT is one argument of bash (the payload is one argument of its interpreter, too).
MAX_SCRIPT_BYTES = 128 * 1024 - 1
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BUNDLE_DIR_ENV = "HODEI_BUNDLE_DIR"
# No base64 line can equal it ("_" is not in the base64 alphabet).
BUNDLE_DELIMITER = "HODEI_BUNDLE_EOF"
# Build output and caches have no place in a job's bundle: the job makes its own.
BUNDLE_SKIPPED_NAMES = frozenset({"__pycache__", "target", ".git", ".mypy_cache", ".pytest_cache"})
# Runs on the worker: unpack the bundle (base64 on stdin) into argv[1]. The "data" filter,
# where Python has it, refuses members that would land outside the folder.
UNPACK_BUNDLE = (
    "import base64, io, sys, tarfile; "
    "archive = tarfile.open(fileobj=io.BytesIO(base64.b64decode(sys.stdin.read())), mode='r:gz'); "
    "archive.extractall(sys.argv[1], **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))"
)


class PayloadError(ValueError):
    """A payload that cannot be made into a job; the message is one line for the user."""


@dataclass(frozen=True)
class Interpreter:
    """How the script hands the payload text (in ``$payload``) to its interpreter."""

    argv: tuple[str, ...]  # the command line before the payload's own arguments

    def command_line(self, args: Sequence[str]) -> str:
        return " ".join([*self.argv, *map(shlex.quote, args)])


INTERPRETERS: dict[str, Interpreter] = {
    ".py": Interpreter(("python3", "-u", "-c", '"$payload"')),
    # bash -c takes $0 after the script: name it after the payload for readable error messages.
    ".sh": Interpreter(("bash", "-c", '"$payload"', "payload.sh")),
}


@dataclass(frozen=True)
class JobSpec:
    """What ``HodeiClient.queue_job`` needs to run a payload: command and arguments."""

    command: str
    arguments: list[str] = field(default_factory=list)


def payload_file(name: str) -> Path:
    """A payload shipped with this package (``hodei_stream/jobs/payloads/NAME``)."""
    return PAYLOADS_DIR / name


def bash_script(
    source: str,
    interpreter: Interpreter,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    bundle: Sequence[Path] = (),
) -> str:
    """The text of a ``bash -c`` script that runs ``source`` with ``args`` and ``env``.

    The environment is exported in the script rather than sent as the job's environment so
    that the script alone is the whole job: it runs the same under ``bash -c`` by hand.
    ``bundle``: files and folders unpacked under ``$HODEI_BUNDLE_DIR`` before the payload runs.
    """
    if "\0" in source:
        raise PayloadError("a payload cannot contain NUL bytes")
    lines = ["set -e"]
    for name, value in (env or {}).items():
        if not ENV_NAME.match(name):
            raise PayloadError(f"'{name}' is not an environment variable name")
        lines.append(f"export {name}={shlex.quote(value)}")
    if bundle:
        lines += [
            f"{BUNDLE_DIR_ENV}=$(mktemp -d); export {BUNDLE_DIR_ENV}",
            f"trap 'rm -rf \"${BUNDLE_DIR_ENV}\"' EXIT",
            f"python3 -c {shlex.quote(UNPACK_BUNDLE)} \"${BUNDLE_DIR_ENV}\" <<'{BUNDLE_DELIMITER}'",
            pack_bundle(bundle) + BUNDLE_DELIMITER,
        ]
    body = source if source.endswith("\n") else source + "\n"
    delimiter = unique_delimiter(body)
    # read -d '' stops at end of input and so returns 1: that is success here, hence || true.
    lines.append(f"IFS= read -r -d '' payload <<'{delimiter}' || true")
    lines.append(body + delimiter)
    # exec, unless the EXIT trap must still remove the bundle after the payload ends.
    lines.append(("" if bundle else "exec ") + interpreter.command_line(args))
    script = "\n".join(lines) + "\n"
    if len(script.encode()) > MAX_SCRIPT_BYTES:
        raise PayloadError(
            f"the job script is {len(script.encode()):,} bytes; a single argument may not exceed {MAX_SCRIPT_BYTES:,}"
        )
    return script


def pack_bundle(paths: Sequence[Path]) -> str:
    """``paths`` as a gzipped tar in base64 lines, each at the archive's top level by its name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in paths:
            if not path.exists():
                raise PayloadError(f"cannot bundle {path}: no such file or folder")
            archive.add(path, arcname=path.name, filter=skip_build_output)
    return base64.encodebytes(buffer.getvalue()).decode("ascii")


def skip_build_output(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if Path(member.name).name in BUNDLE_SKIPPED_NAMES else member


def unique_delimiter(body: str) -> str:
    """A heredoc delimiter that no line of ``body`` equals, or the heredoc would end early."""
    lines = set(body.split("\n"))  # exactly the lines bash compares, no other separators
    delimiter, suffix = HEREDOC_DELIMITER, 0
    while delimiter in lines:
        suffix += 1
        delimiter = f"{HEREDOC_DELIMITER}_{suffix}"
    return delimiter


def job_spec(
    payload: Path,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    bundle: Sequence[Path] = (),
) -> JobSpec:
    """The job that runs the payload file ``payload`` on a worker, as the platform submits it."""
    interpreter = INTERPRETERS.get(payload.suffix)
    if interpreter is None:
        raise PayloadError(f"no interpreter for payload {payload.name} (known: {', '.join(INTERPRETERS)})")
    source = payload.read_text(encoding="utf-8")
    return JobSpec("/bin/bash", ["-c", bash_script(source, interpreter, args, env, bundle)])
