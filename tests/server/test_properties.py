"""Property-based tests (hypothesis): the supervisor's line splitter and the streamer's
formatter hold their promises for any input, not just the examples in the table tests."""

from __future__ import annotations

import itertools
import re
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from hodei_stream.records import LogLine
from hodei_stream.server import output_lines
from hodei_stream.server.output_lines import LineSplitter
from hodei_stream.stream.format import Style, format_line

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A small line limit, so that the examples reach the overlong-line cuts.
SMALL_MAX_LINE_BYTES = 8


def split(data: bytes, cuts: list[int]) -> list[str]:
    """Feed ``data`` to a splitter in chunks cut at ``cuts``; every line it yields."""
    splitter = LineSplitter()
    bounds = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    lines = [line for start, end in itertools.pairwise(bounds) for line in splitter.feed(data[start:end])]
    return lines + splitter.finish()


@given(st.binary(max_size=200), st.lists(st.integers(min_value=0), max_size=10))
def test_splitter_output_does_not_depend_on_how_the_output_was_read(data: bytes, cuts: list[int]) -> None:
    with mock.patch.object(output_lines, "MAX_LINE_BYTES", SMALL_MAX_LINE_BYTES):
        assert split(data, cuts) == split(data, [])


@given(st.text(max_size=200), st.lists(st.integers(min_value=0), max_size=10))
def test_splitter_loses_nothing_and_keeps_lines_under_the_limit(text: str, cuts: list[int]) -> None:
    with mock.patch.object(output_lines, "MAX_LINE_BYTES", SMALL_MAX_LINE_BYTES):
        lines = split(text.encode(), cuts)
    assert all(len(line.encode()) <= SMALL_MAX_LINE_BYTES for line in lines)
    # Cut pieces of an overlong line are lines of their own: joined, they are the text again
    # (less its newlines), never a character cut in two.
    assert "".join(lines) == text.replace("\n", "")


@given(st.binary(max_size=300))
def test_splitter_gives_one_line_per_newline_plus_an_unterminated_tail(data: bytes) -> None:
    lines = split(data, [])  # (lines far under the real limit: no cuts)
    assert len(lines) == data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    assert all("\n" not in line for line in lines)


log_lines = st.builds(
    LogLine,
    job_id=st.uuids().map(str),
    sequence=st.integers(min_value=0, max_value=2**62),
    captured_ns=st.integers(min_value=0, max_value=4_102_444_800 * 10**9),  # up to 2100
    is_stderr=st.booleans(),
    text=st.text(),
)
styles = st.builds(Style, colour=st.booleans(), timestamps=st.booleans(), job_labels=st.booleans())


@given(log_lines, styles)
def test_formatter_adds_no_line_break_the_text_did_not_have(line: LogLine, style: Style) -> None:
    formatted = format_line(line, style)
    for newline in ("\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"):
        assert formatted.count(newline) == line.text.count(newline)


@given(log_lines, styles)
def test_plain_text_always_ends_the_line_and_colour_only_adds_escapes(line: LogLine, style: Style) -> None:
    plain_style = Style(colour=False, timestamps=style.timestamps, job_labels=style.job_labels)
    plain = format_line(line, plain_style)
    assert plain.endswith(line.text)
    assert ("[ERR]" if line.is_stderr else "[OUT]") in plain
    if "\x1b" not in line.text:
        assert (
            ANSI.sub(
                "", format_line(line, Style(colour=True, timestamps=style.timestamps, job_labels=style.job_labels))
            )
            == plain
        )
