"""What every hodei-stream command line shares: the one-line usage error, the range a
number must lie in, the installed version, a command to run again, and a quiet exit on a
closed pipe.  argparse's commands (``stream-logs``, ``hodei``, ``hodei-server``) use
``UsageParser`` and ``bounded``; the job scripts (plumbum) reach the same through
``hodei_stream.jobs.usage``.

Kept to the standard library and light imports: ``stream-logs`` imports this on its way to
the first line.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import NoReturn, TextIO

from hodei_stream.exit_codes import ExitStatus


def refuse_usage(program: str, message: str, stderr: TextIO) -> ExitStatus:
    """Say on ``stderr`` why a command line is refused, in the one line every command gives
    (what is wrong, and where the help is); the exit status to leave with."""
    print(f"{program}: {message} (see {program} --help)", file=stderr, flush=True)
    return ExitStatus.USAGE


def installed_version() -> str | None:
    """The installed hodei-stream's version; None when it runs from a tree never installed.
    Read from the package's metadata only when asked (start-up time)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hodei-stream")
    except PackageNotFoundError:
        return None


class UsageParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are ``refuse_usage``'s one line and exit 2,
    and which can print the installed version (``add_version``: ``-V``/``--version``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(refuse_usage(self.prog, message, sys.stderr))

    def add_version(self) -> None:
        self.add_argument("-V", "--version", action=_VersionAction, nargs=0, help="print the version and exit")


class _VersionAction(argparse.Action):
    """Print the package's version, looked up only when asked (start-up time)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        number = installed_version() or "unknown (not installed as a package)"
        try:
            print(f"{parser.prog.split()[0]} (hodei-stream) {number}", flush=True)
        except BrokenPipeError:
            silence_stdout()
        parser.exit()


class OutOfRange(ValueError):
    """A number that parsed, but is not finite or lies outside its range."""


def in_range(text: str, kind: Callable[[str], float], low: float, high: float, *, low_open: bool) -> float:
    """``text`` as a ``kind`` (``int`` or ``float``) in ``[low, high]`` (``(low, high]`` with
    ``low_open``); nan and the infinities never pass.  The one decision behind every
    command's numeric options: ``ValueError`` when ``text`` is not a ``kind`` at all,
    ``OutOfRange`` when it is one out of range; each parser words them its own way."""
    value = kind(text)
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float: out of every range
        finite = False
    if not finite or value < low or (low_open and value == low) or value > high:
        raise OutOfRange(text)
    return value


def bounded(
    kind: Callable[[str], float],
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    unit: str = "",
) -> Callable[[str], float]:
    """An argparse ``type`` for a number in ``[low, high]`` (``(low, high]`` with
    ``low_open``); nan and the infinities never pass.  Out of range: argparse's usage error,
    naming the range."""
    upper = "" if high == math.inf else f" and at most {high:.15g}{unit}"  # .15g: 2073600, not 2.07e+06
    lower = f"more than {low:.15g}{unit}" if low_open else f"at least {low:.15g}{unit}"
    wanted = f"{'an integer' if kind is int else 'a number'} {lower}{upper}"

    def parse(text: str) -> float:
        try:
            return in_range(text, kind, low, high, low_open=low_open)
        except OutOfRange:
            raise argparse.ArgumentTypeError(f"{text} is out of range: expected {wanted}") from None
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {wanted}") from None

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def command_to_rerun(program: str, module: str, launcher: str | None) -> str:
    """How the user can run ``program`` again, as a command that works where they are: its
    name when it is on PATH, else the launcher they ran (``launcher``, the environment's:
    ``job_scripts/stream-logs``), else the installed script beside this Python, else
    ``python -m module``."""
    import shlex  # here, not at the top: only a Ctrl+C needs them (start-up time)
    import shutil

    if shutil.which(program):
        return program
    if launcher and os.access(launcher, os.X_OK):
        return shlex.quote(launcher)
    installed = os.path.join(os.path.dirname(sys.executable), program)
    if os.access(installed, os.X_OK):
        return shlex.quote(installed)
    return f"{shlex.quote(sys.executable)} -m {module}"


def watch_again_hint(job_ids: list[str], server_url: str | None, launcher: str | None) -> str:
    """The line after Ctrl+C: the job goes on, and the command that watches it again
    (with ``--server`` when the user named one; ``launcher``: ``command_to_rerun``'s)."""
    import shlex

    command = [command_to_rerun("stream-logs", "hodei_stream.stream.cli", launcher)]
    if server_url:
        command += ["--server", shlex.quote(server_url)]
    return f"⏹  stopped watching; the job goes on. Watch it again with: {' '.join([*command, *job_ids])}"


def silence_stdout() -> None:
    """Our reader left (``| head``): point stdout at /dev/null, so that nothing more we or
    the interpreter write there at exit meets the broken pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
