"""The ``stream-logs`` command: its entry point, signals, the output files, and how a
closed reader ends it.  The options are in ``options.py``, the run itself in ``session.py``.

Kept light on imports (argparse, no plumbum): start-up time is part of how fast the first
line reaches the screen.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Sequence

from hodei_stream.ci.commands import NO_CI
from hodei_stream.ci.output import CiChoiceError, CiOutput, chosen_ci
from hodei_stream.command_line import silence_stdout
from hodei_stream.environment import Environment
from hodei_stream.exit_codes import ExitStatus
from hodei_stream.stream.options import Options, line_filter, parse_options
from hodei_stream.stream.session import Interrupted, Session
from hodei_stream.stream.write import ReaderGone, Writer


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted


def main(argv: Sequence[str] | None = None, environment: Environment | None = None) -> int:
    """stream-logs: its command line (``sys.argv`` by default) in this process's environment
    (or the one given); the exit status."""
    signal.signal(signal.SIGTERM, _raise_interrupted)
    options = parse_options(argv)
    env = Environment.of_process() if environment is None else environment
    if (problem := usage_problem(options, env)) is not None:
        print(f"stream-logs: {problem}", file=env.stderr)
        return ExitStatus.USAGE
    ci = chosen_ci(options.ci, env.variables)
    export_fd = None
    if options.output:
        try:
            export_fd = os.open(options.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        except OSError as error:
            print(f"stream-logs: cannot write {options.output}: {error.strerror}", file=env.stderr)
            return ExitStatus.USAGE
    writer = Writer(log_fd=2 if options.stderr else 1, notice_fd=2, export_fd=export_fd)
    keep = line_filter(options)
    if ci != NO_CI and not options.json:  # JSON lines are for a program: no CI output among them
        writer.in_ci(CiOutput(ci), raw_lines=options.raw)
    try:
        status = Session(options, env, writer, keep).run()
        writer.end_guard()  # the CI reads the commands of whatever runs after us
        return status
    except ReaderGone:
        silence_stdout()  # our reader left (| head): nothing more to show anyone
        return ExitStatus.OK
    finally:
        writer.close_export()


def usage_problem(options: Options, env: Environment) -> str | None:
    """What in the options no run could get past, found without a call (so that ``hodei
    run`` says it before it submits a job): the usage error's message, or None."""
    try:
        chosen_ci(options.ci, env.variables)
    except CiChoiceError as error:
        return str(error)
    for what, path in (("the JUnit report ", options.junit), ("", options.output)):
        if path and not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            return f"cannot write {what}{path}: no such writable folder"
    try:
        line_filter(options)
    except re.error as error:
        return f"bad --grep pattern: {error}"
    return None


if __name__ == "__main__":
    sys.exit(main())
