"""What a command takes from the process it runs in: its standard streams, whether each is a
terminal, and the environment variables it reads.

A command reads them once, at its edge (``Environment.of_process()`` in its ``main``), and
hands the value to the code that needs them, so that nothing deeper reads ``os.environ`` or
asks the terminal again, and a test can give a command other streams or other variables.

Kept to the standard library modules every command has already imported (start-up time).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import NamedTuple, TextIO

# Set by job_scripts/stream-logs: the launcher the user ran, for "watch it again" hints.
ENV_LAUNCHER = "HODEI_STREAM_LAUNCHER"


class Environment(NamedTuple):
    """One command's streams and environment, as they were when it started."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    stdout_isatty: bool
    stderr_isatty: bool
    variables: Mapping[str, str]
    no_color: bool  # NO_COLOR set to anything: no colour unless the command line asks for it
    force_color: bool  # FORCE_COLOR set, but not to 0 or false: colour even off a terminal
    dumb_terminal: bool  # TERM=dumb: a terminal that shows escape sequences as text

    @classmethod
    def of_process(cls) -> Environment:
        """This process's: its streams, descriptors 1 and 2 asked once whether they are
        terminals, and a copy of its environment variables."""
        return cls.made_of(sys.stdin, sys.stdout, sys.stderr, os.isatty(1), os.isatty(2), dict(os.environ))

    @classmethod
    def made_of(
        cls,
        stdin: TextIO,
        stdout: TextIO,
        stderr: TextIO,
        stdout_isatty: bool,
        stderr_isatty: bool,
        variables: Mapping[str, str],
    ) -> Environment:
        """An environment of these streams and variables, the colour variables read from them once."""
        return cls(
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            stdout_isatty=stdout_isatty,
            stderr_isatty=stderr_isatty,
            variables=variables,
            no_color=bool(variables.get("NO_COLOR")),
            force_color=variables.get("FORCE_COLOR", "0") not in ("", "0", "false"),
            dumb_terminal=variables.get("TERM") == "dumb",
        )

    @property
    def launcher(self) -> str | None:
        """The launcher script the user ran (``job_scripts/stream-logs``), when it says so."""
        return self.variables.get(ENV_LAUNCHER) or None

    @property
    def step_summary(self) -> str | None:
        """The file GitHub Actions renders on the run's page (``GITHUB_STEP_SUMMARY``), when set."""
        return self.variables.get("GITHUB_STEP_SUMMARY") or None

    def use_colour(self, choice: str, on_stderr: bool) -> bool:
        """Colour on the stream actually written (stdout, or stderr with ``on_stderr``):
        ``--color`` (``choice``), then NO_COLOR / FORCE_COLOR, then whether it is a terminal."""
        if choice != "auto":
            return choice == "always"
        if self.no_color:
            return False
        if self.force_color:
            return True
        return (self.stderr_isatty if on_stderr else self.stdout_isatty) and not self.dumb_terminal
