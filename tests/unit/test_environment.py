"""Table tests for a command's environment (hodei_stream/environment.py): colour is decided
from what was read once, and the process's own environment is read as it is."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping

import pytest

from hodei_stream.environment import ENV_LAUNCHER, Environment


def made_of(variables: Mapping[str, str], *, stdout_tty: bool = False, stderr_tty: bool = False) -> Environment:
    return Environment.made_of(io.StringIO(), io.StringIO(), io.StringIO(), stdout_tty, stderr_tty, variables)


@pytest.mark.parametrize(
    ("choice", "variables", "stdout_tty", "expected"),
    [
        ("always", {"NO_COLOR": "1"}, False, True),  # the command line wins
        ("never", {"FORCE_COLOR": "1"}, True, False),
        ("auto", {}, True, True),
        ("auto", {}, False, False),
        ("auto", {"NO_COLOR": "1"}, True, False),
        ("auto", {"NO_COLOR": ""}, True, True),  # set but empty: as if unset
        ("auto", {"FORCE_COLOR": "1"}, False, True),
        ("auto", {"FORCE_COLOR": "0"}, False, False),
        ("auto", {"FORCE_COLOR": "false"}, False, False),
        ("auto", {"FORCE_COLOR": ""}, False, False),
        ("auto", {"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),  # NO_COLOR first
        ("auto", {"TERM": "dumb"}, True, False),
        ("auto", {"TERM": "dumb", "FORCE_COLOR": "1"}, False, True),
    ],
)
def test_colour_on_stdout(choice: str, variables: dict[str, str], stdout_tty: bool, expected: bool) -> None:
    assert made_of(variables, stdout_tty=stdout_tty).use_colour(choice, on_stderr=False) is expected


def test_colour_on_stderr_asks_stderr_whether_it_is_a_terminal() -> None:
    env = made_of({}, stdout_tty=False, stderr_tty=True)
    assert env.use_colour("auto", on_stderr=True) is True
    assert env.use_colour("auto", on_stderr=False) is False


def test_colour_variables_are_read_once_when_made() -> None:
    variables = {"NO_COLOR": "1"}
    env = made_of(variables, stdout_tty=True)
    variables.pop("NO_COLOR")  # a later change to the mapping is not seen
    assert env.use_colour("auto", on_stderr=False) is False


def test_launcher_empty_is_none() -> None:
    assert made_of({ENV_LAUNCHER: ""}).launcher is None
    assert made_of({ENV_LAUNCHER: "/x/stream-logs"}).launcher == "/x/stream-logs"


def test_of_process_reads_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    env = Environment.of_process()
    assert env.no_color is True
    assert env.variables["NO_COLOR"] == "1"
    assert env.stdout_isatty is os.isatty(1)
    assert env.stderr_isatty is os.isatty(2)
    monkeypatch.delenv("NO_COLOR")
    assert env.no_color is True  # a snapshot: the process's later changes are not seen
