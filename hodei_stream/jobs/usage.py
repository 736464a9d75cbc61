"""The job scripts' command lines: numeric options with ranges, and usage errors in our words.

Every numeric option of every job script is made by ``number_switch``: the value must parse,
be finite and lie in the option's range, else the script stops before doing anything with
one line and exit status 2 (``ExitStatus.USAGE``).  ``usage_message`` turns plumbum's own
switch errors ("Given --records, the following are missing ['etl']") into the same kind of
line ("--records needs --etl"); ``JobScript`` (``hodei_stream.jobs.wrapper``) prints it as
``PROG: MESSAGE (see PROG --help)`` instead of plumbum's error followed by the whole help.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from plumbum import cli
from plumbum.cli.switches import SwitchError

from hodei_stream.command_line import OutOfRange, in_range


class OptionValueError(ValueError):
    """A switch value out of its range; the message names the switch and is the one line shown."""


@dataclass(frozen=True)
class Number:
    """A switch's argument type: ``kind`` (int or float) parsed, finite, within [low, high]
    (``command_line.in_range`` decides; this says it in the job scripts' words)."""

    option: str
    kind: type[int] | type[float]
    low: float
    high: float

    def __call__(self, text: str) -> float:  # an int for kind=int (mypy counts int as a float)
        try:
            return in_range(text, self.kind, self.low, self.high, low_open=False)
        except OutOfRange:
            raise OptionValueError(f"{self.option} takes {self.described()}, not {text}") from None
        except ValueError:
            raise OptionValueError(f"{self.option} takes {self.described()}, not {text!r}") from None

    def described(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        return f"{what} from {plain(self.low)} to {plain(self.high)}"

    def __str__(self) -> str:  # how plumbum's help shows the argument: "--records N:[1..10,000,000]"
        return f"[{plain(self.low)}..{plain(self.high)}]"


def plain(number: float) -> str:
    """1 → "1", 10000000 → "10,000,000", 0.05 → "0.05"."""
    return f"{int(number):,}" if number == int(number) else f"{number:g}"


def number_switch(
    name: str,
    kind: type[int] | type[float],
    low: float,
    high: float,
    default: float,
    argname: str,
    help: str,  # noqa: A002 (plumbum's own name for it, as in cli.SwitchAttr)
    requires: Sequence[str] = (),
) -> cli.SwitchAttr[float]:
    """A ``cli.SwitchAttr`` for a number in [low, high]; anything else is a usage error."""
    number = Number(name, kind, low, high)
    return cli.SwitchAttr(name, number, default=default, argname=argname, help=help, requires=requires)


def switch_names(listed: str, dashed: bool) -> str:
    """plumbum's list of switches (``['etl']`` or ``['--build']``) as ``--etl`` / ``--build``."""
    names = ast.literal_eval(f"[{listed}]")
    if not dashed:
        names = [("-" if len(name) == 1 else "--") + name for name in names]
    return " and ".join(names)


# plumbum's messages (English: plumbum translates them with gettext when the locale asks, and
# then the original is shown as it is) → ours: what is wrong, named with the switch's dashes.
REWORDED: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"Unknown switch (\S+)"), lambda m: f"unknown option {m[1]}"),
    (re.compile(r"Switch (\S+) requires an argument"), lambda m: f"{m[1]} needs a value"),
    (re.compile(r"Switch (\S+) does not take an argument"), lambda m: f"{m[1]} takes no value"),
    (re.compile(r"Switch (\S+) already given"), lambda m: f"{m[1]} is given twice"),
    (re.compile(r"Switch (\S+) is mandatory"), lambda m: f"{m[1]} is required"),
    (
        re.compile(r"Given (\S+), the following are missing \[(.*)\]"),
        lambda m: f"{m[1]} needs {switch_names(m[2], False)}",
    ),
    (
        re.compile(r"Given (\S+), the following are invalid \[(.*)\]"),
        lambda m: f"{m[1]} cannot be used with {switch_names(m[2], True)}",
    ),
    (
        re.compile(r"Expected at most (\d+) positional arguments?, got \[(.*)\]"),
        lambda m: "unexpected argument " + ", ".join(map(repr, ast.literal_eval(f"[{m[2]}]")[int(m[1]) :])),
    ),
    (
        re.compile(r"Argument of (\S+) expected to be .*, not (.*?):\n", re.DOTALL),
        lambda m: f"{m[1]}: bad value {m[2]}",
    ),
]


MISSING_ARGUMENTS = re.compile(r"Expected at least \d+ positional arguments?, got \[(.*)\]")


def usage_message(error: SwitchError, argument_names: Sequence[str] = ()) -> str:
    """One line for a command line plumbum refused; ``argument_names``: main's positional arguments."""
    if isinstance(error.__context__, OptionValueError):  # a ``Number`` refused it, in our words already
        return str(error.__context__)
    text = str(error)
    if match := MISSING_ARGUMENTS.match(text):
        given = len(ast.literal_eval(f"[{match[1]}]"))
        return "missing " + " ".join(name.upper() for name in argument_names[given:])
    for pattern, reword in REWORDED:
        if match := pattern.match(text):
            return reword(match)
    return text.splitlines()[0] if text else type(error).__name__
