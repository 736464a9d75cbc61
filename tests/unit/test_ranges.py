"""Table tests for the one range check behind every numeric option (command_line.in_range)
and its two adapters: argparse's (``bounded``) and the job scripts' (``jobs.usage.Number``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import pytest

from hodei_stream.command_line import OutOfRange, bounded, in_range
from hodei_stream.jobs.usage import Number, OptionValueError


@pytest.mark.parametrize(
    ("text", "kind", "low", "high", "low_open", "expected"),
    [
        ("0", int, 0, math.inf, False, 0),
        ("5", int, 1, 5, False, 5),
        ("0.5", float, 0, 1, True, 0.5),
        ("1e3", float, 0, math.inf, False, 1000.0),
    ],
)
def test_in_range_passes(
    text: str, kind: Callable[[str], float], low: float, high: float, low_open: bool, expected: float
) -> None:
    value = in_range(text, kind, low, high, low_open=low_open)
    assert value == expected
    assert type(value) is kind


@pytest.mark.parametrize(
    ("text", "kind", "low", "high", "low_open"),
    [
        ("-1", int, 0, math.inf, False),
        ("6", int, 1, 5, False),
        ("0", float, 0, 1, True),  # the open end
        ("nan", float, 0, math.inf, False),
        ("inf", float, 0, math.inf, False),  # even with no upper bound
        ("-inf", float, -math.inf, 0, False),
        ("9" * 400, int, 0, math.inf, False),  # too large for a float: out of every range, no OverflowError
    ],
)
def test_in_range_refuses_out_of_range(
    text: str, kind: Callable[[str], float], low: float, high: float, low_open: bool
) -> None:
    with pytest.raises(OutOfRange):
        in_range(text, kind, low, high, low_open=low_open)


@pytest.mark.parametrize(("text", "kind"), [("x", float), ("1.5", int), ("", int)])
def test_in_range_refuses_what_is_no_number_as_a_value_error(text: str, kind: Callable[[str], float]) -> None:
    with pytest.raises(ValueError, match=r"invalid literal|could not convert") as refused:
        in_range(text, kind, 0, 10, low_open=False)
    assert not isinstance(refused.value, OutOfRange)


def test_argparse_words() -> None:
    parse = bounded(float, 0, 60, low_open=True, unit="s")
    assert parse("2") == 2.0
    with pytest.raises(
        argparse.ArgumentTypeError, match=r"^0 is out of range: expected a number more than 0s and at most 60s$"
    ):
        parse("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^'x' is not a number more than 0s and at most 60s$"):
        parse("x")


def test_job_script_words() -> None:
    number = Number("--records", int, 1, 10_000_000)
    assert number("7") == 7
    with pytest.raises(OptionValueError, match=r"^--records takes a whole number from 1 to 10,000,000, not 0$"):
        number("0")
    with pytest.raises(OptionValueError, match=r"^--records takes a whole number from 1 to 10,000,000, not 'x'$"):
        number("x")
