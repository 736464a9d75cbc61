"""Table tests for the pure formatter (hodei_stream/stream/format.py)."""

from __future__ import annotations

import json
import time

import pytest

from hodei_stream.records import LogLine
from hodei_stream.stream import format as fmt

JOB = "550e8400-e29b-41d4-a716-446655440000"


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    fmt._clock.cache_clear()  # noqa: SLF001 (the formatter caches the time zone; a test changes it)


def line(text: str, *, err: bool = False, ns: int = 1_764_253_425_123_456_789, seq: int = 7) -> LogLine:
    # 1_764_253_425 s = 2025-11-27 14:23:45 UTC
    return LogLine(job_id=JOB, sequence=seq, captured_ns=ns, is_stderr=err, text=text)


PLAIN = fmt.Style(colour=False)
COLOUR = fmt.Style(colour=True)
G, R, Y, GR, D, X = fmt.GREEN, fmt.RED, fmt.YELLOW, fmt.GREY, fmt.DIM, fmt.RESET


@pytest.mark.parametrize(
    ("record", "style", "expected"),
    [
        (line("Starting ETL"), PLAIN, "14:23:45.123 [OUT] Starting ETL"),
        (line("boom", err=True), PLAIN, "14:23:45.123 [ERR] boom"),
        (line("x", ns=1_764_253_425_000_999_999), PLAIN, "14:23:45.000 [OUT] x"),
        (line("x", ns=1_764_253_425_999_999_999), PLAIN, "14:23:45.999 [OUT] x"),
        (line("no stamp"), fmt.Style(timestamps=False), "[OUT] no stamp"),
        (line("tabs\tand trailing  "), PLAIN, "14:23:45.123 [OUT] tabs\tand trailing  "),
        (line("50%\r75%\r100%"), PLAIN, "14:23:45.123 [OUT] 50%\r75%\r100%"),
        (line(""), PLAIN, "14:23:45.123 [OUT] "),
        (line("bad \ufffd byte"), PLAIN, "14:23:45.123 [OUT] bad \ufffd byte"),
        (line("two jobs"), fmt.Style(job_labels=True), "550e8400 14:23:45.123 [OUT] two jobs"),
        (
            line("named"),
            fmt.Style(job_labels=True, labels={JOB: "etl/550e8400"}),
            "etl/550e8400 14:23:45.123 [OUT] named",
        ),
        (line("hello"), COLOUR, f"{GR}14:23:45.123{X} {G}[OUT]{X} hello"),
        (line("oops", err=True), COLOUR, f"{GR}14:23:45.123{X} {R}[ERR]{X} oops"),
        (line("ERROR disk full"), COLOUR, f"{GR}14:23:45.123{X} {G}[OUT]{X} {R}ERROR disk full{X}"),
        (line("[warn] slow"), COLOUR, f"{GR}14:23:45.123{X} {G}[OUT]{X} {Y}[warn] slow{X}"),
        (line("ts=1 level=debug msg=x"), COLOUR, f"{GR}14:23:45.123{X} {G}[OUT]{X} {D}ts=1 level=debug msg=x{X}"),
        (line("INFO all good"), COLOUR, f"{GR}14:23:45.123{X} {G}[OUT]{X} INFO all good"),
        (line("no error here"), COLOUR, f"{GR}14:23:45.123{X} {G}[OUT]{X} no error here"),
    ],
)
def test_format_line(record: LogLine, style: fmt.Style, expected: str) -> None:
    assert fmt.format_line(record, style) == expected


ESCAPED = fmt.Style(escape=True, timestamps=False)


@pytest.mark.parametrize(
    "style",
    [PLAIN, COLOUR, fmt.Style(escape=True), fmt.Style(timestamps=False), fmt.Style(job_labels=True)],
)
@pytest.mark.parametrize("shown_ns", [None, 1_764_253_426_500_000_000])
def test_a_batch_is_formatted_as_each_line_alone(style: fmt.Style, shown_ns: int | None) -> None:
    batch = [
        line("first"),
        line("same millisecond", err=True),
        line("next millisecond", ns=1_764_253_425_124_000_000),
        line("bell\a and tab\t", ns=1_764_253_425_124_000_001),
        line("ERROR next second", ns=1_764_253_426_000_000_000),
        line("back in time", ns=1_764_253_425_123_456_789),
    ]
    assert fmt.format_lines(batch, style, shown_ns) == [fmt.format_line(one, style, shown_ns) for one in batch]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, tab\tkept, ünïcode €", "plain text, tab\tkept, ünïcode €"),
        ("\033]0;owned\007title", "\\x1b]0;owned\\x07title"),  # window title (OSC)
        ("\033[2J\033[Hcleared", "\\x1b[2J\\x1b[Hcleared"),  # clear screen, cursor home
        ("\033[32m✅ stream ended: job COMPLETED\033[0m", "\\x1b[32m✅ stream ended: job COMPLETED\\x1b[0m"),
        ("50%\r75%", "50%\\x0d75%"),
        ("nul\x00 bell\x07 bs\x08 del\x7f", "nul\\x00 bell\\x07 bs\\x08 del\\x7f"),
        ("c1 csi\x9b2J nel\x85 next\xa0nbsp", "c1 csi\\x9b2J nel\\x85 next\xa0nbsp"),  # U+00A0 is printable
        ("a\nb\x1fc", "a\\x0ab\\x1fc"),
        ("", ""),
    ],
)
def test_control_characters_escaped_on_a_terminal(text: str, shown: str) -> None:
    assert fmt.visible(text) == shown
    assert fmt.format_line(line(text), ESCAPED) == f"[OUT] {shown}"
    assert fmt.format_line(line(text), fmt.Style(timestamps=False)) == f"[OUT] {text}"  # pipes: exact


def test_escaping_keeps_our_own_colours() -> None:
    shown = fmt.format_line(line("ERROR \033[31mred"), fmt.Style(colour=True, escape=True, timestamps=False))
    assert shown == f"{G}[OUT]{X} {R}ERROR \\x1b[31mred{X}"


def test_arrival_time_replaces_capture_time() -> None:
    assert fmt.format_line(line("x"), PLAIN, shown_ns=1_764_253_426_500_000_000) == "14:23:46.500 [OUT] x"


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("ERROR: x", "ERROR"),
        ("FATAL x", "FATAL"),
        ("[error] x", "ERROR"),
        ("<Warning> x", "WARNING"),
        ('level="warn" x', "WARN"),
        ("level=INFO x", "INFO"),
        ("DEBUG x", "DEBUG"),
        ("TRACE x", "TRACE"),
        ("an error occurred", None),
        ("ERRORS", None),
        ("", None),
    ],
)
def test_level_of(text: str, level: str | None) -> None:
    assert fmt.level_of(text) == level


def test_label_colour_is_stable_and_not_red_or_green() -> None:
    assert fmt.label_colour(JOB) == fmt.label_colour(JOB)
    assert fmt.label_colour(JOB) not in (fmt.RED, fmt.GREEN)


def test_json_line() -> None:
    record = line('quote " and \ttab', err=True)
    assert json.loads(fmt.format_json(record)) == {
        "job_id": JOB,
        "sequence": 7,
        "timestamp": "2025-11-27T14:23:45.123456789Z",
        "stream": "stderr",
        "line": 'quote " and \ttab',
    }


def test_header() -> None:
    assert fmt.format_header(JOB, colour=False) == f"📡 Streaming logs for job: {JOB}\n{'─' * 64}"


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        (fmt.Ending(JOB, "COMPLETED", "0", 4.2), "✅ stream ended: job COMPLETED, exit code 0, took 4.20s"),
        (fmt.Ending(JOB, "FAILED", "3", 75.0), "❌ stream ended: job FAILED, exit code 3, took 1m15s"),
        (
            fmt.Ending(JOB, "FAILED", "", None, "Worker reported failure"),
            "❌ stream ended: job FAILED, exit code unknown, Worker reported failure",
        ),
        (
            fmt.Ending(JOB, "TIMEOUT", "", None, "execution timeout 2s passed"),
            "❌ stream ended: job TIMEOUT, execution timeout 2s passed",
        ),
        (
            fmt.Ending(JOB, "CANCELLED", "", None, "cancelled: \033[2Jbye\nnow"),
            "❌ stream ended: job CANCELLED, cancelled: \\x1b[2Jbye\\x0anow",
        ),
        (
            fmt.Ending(JOB, "RUNNING", "", None, how="history shown (the job goes on)"),
            "⏳ history shown (the job goes on): job RUNNING",
        ),
    ],
)
def test_ending(ending: fmt.Ending, expected: str) -> None:
    assert fmt.format_ending(ending, colour=False) == expected


def test_labelled_ending_and_joined_line() -> None:
    ending = fmt.Ending(JOB, "COMPLETED", "0", 1.5)
    assert (
        fmt.format_ending(ending, colour=False, label="build")
        == "build ✅ stream ended: job COMPLETED, exit code 0, took 1.50s"
    )
    assert fmt.format_joined(JOB, "build", colour=False) == f"build 🆕 job {JOB} joined"
    assert fmt.format_joined(JOB, "build", colour=True) == f"{fmt.label_colour(JOB)}build{X} 🆕 job {JOB} joined"


@pytest.mark.parametrize(("seconds", "text"), [(0.5, "0.50s"), (59.994, "59.99s"), (61, "1m01s"), (3725, "1h02m05s")])
def test_duration(seconds: float, text: str) -> None:
    assert fmt.format_duration(seconds) == text
