"""--since/--until times and --level (hodei_stream/stream/window.py): each form of time, and a
table of lines kept or dropped by level, with the formatter's own level recognition."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from hodei_stream.records import LogLine
from hodei_stream.stream.window import BadTime, parse_time, window_filter

NOW_NS = 1_764_680_000_123_000_000  # 2025-12-02T12:53:20.123Z
S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("90s", NOW_NS - 90 * S),
        ("10m", NOW_NS - 600 * S),
        ("2h", NOW_NS - 7200 * S),
        ("1d", NOW_NS - 86400 * S),
        ("1h30m", NOW_NS - 5400 * S),
        ("-1.5s", NOW_NS - 1_500_000_000),
        ("+10m", NOW_NS + 600 * S),
        ("250ms", NOW_NS - 250_000_000),
        ("2025-12-02T12:00:00Z", int(datetime(2025, 12, 2, 12, tzinfo=UTC).timestamp()) * S),
        ("2025-12-02T13:00:00.5+01:00", int(datetime(2025, 12, 2, 12, tzinfo=UTC).timestamp()) * S + S // 2),
    ],
)
def test_relative_and_iso_times(text: str, expected_ns: int) -> None:
    assert parse_time(text, NOW_NS) == expected_ns


def test_a_time_of_day_is_today_in_local_time() -> None:
    now_ns = time.time_ns()
    today = time.localtime(now_ns // S)
    expected = time.mktime((today.tm_year, today.tm_mon, today.tm_mday, 9, 5, 7, 0, 0, -1))
    assert parse_time("09:05:07.25", now_ns) == int(expected) * S + 250_000_000
    assert parse_time("09:05", now_ns) == int(expected - 7) * S
    naive = datetime(today.tm_year, today.tm_mon, today.tm_mday, 9, 5, 7).astimezone()
    assert parse_time(naive.replace(tzinfo=None).isoformat(), now_ns) == int(expected) * S


@pytest.mark.parametrize("text", ["", "soon", "10", "10x", "25:00", "12:60", "2025-13-01", "+", "m10"])
def test_what_is_no_time(text: str) -> None:
    with pytest.raises(BadTime):
        parse_time(text, NOW_NS)


def line(text: str, at_ns: int = NOW_NS) -> LogLine:
    return LogLine("550e8400-e29b-41d4-a716-446655440000", 1, at_ns, False, text)


LEVEL_TABLE = [
    # text, kept at --level warn, kept at --level warn --level-strict
    ("TRACE entering loop", False, False),
    ("DEBUG cache hit", False, False),
    ("INFO started", False, False),
    ("[info] started", False, False),
    ("WARN disk 91% full", True, True),
    ("WARNING: deprecated flag", True, True),
    ("level=warn msg=slow", True, True),
    ("<error> cannot open", True, True),
    ("ERROR: failed", True, True),
    ("CRITICAL overheating", True, True),
    ("FATAL out of memory", True, True),
    ("no error found", True, False),  # prose, no level word: kept unless strict
    ("plain line", True, False),
]


@pytest.mark.parametrize(("text", "kept", "kept_strict"), LEVEL_TABLE)
def test_level_table(text: str, kept: bool, kept_strict: bool) -> None:
    loose = window_filter(None, None, "warn", level_strict=False)
    strict = window_filter(None, None, "warn", level_strict=True)
    assert loose is not None and strict is not None
    assert (loose(line(text)), strict(line(text))) == (kept, kept_strict)


def test_levels_rank_from_trace_to_fatal() -> None:
    texts = ["TRACE a", "DEBUG b", "INFO c", "WARN d", "ERROR e", "FATAL f"]
    for lowest, level in enumerate(("trace", "debug", "info", "warn", "error", "fatal")):
        keep = window_filter(None, None, level, level_strict=True)
        assert keep is not None
        assert [text for text in texts if keep(line(text))] == texts[lowest:]


def test_window_edges_are_inclusive() -> None:
    keep = window_filter(NOW_NS, NOW_NS + S, None, level_strict=False)
    assert keep is not None
    kept = [at for at in (NOW_NS - 1, NOW_NS, NOW_NS + S, NOW_NS + S + 1) if keep(line("x", at))]
    assert kept == [NOW_NS, NOW_NS + S]
    assert window_filter(None, None, None, level_strict=False) is None
