"""--since, --until and --level: the times they name, and the lines they keep.

A time is relative to now (``90s``, ``10m``, ``2h``, ``1d``, combined as ``1h30m``: that long
ago; ``+10m``: that long from now), an ISO 8601 date and time (``2026-12-02T14:30:00``, with
an offset or ``Z``; without one it is local time), or a local time of day today (``14:30``,
``14:30:05.250``).  Levels are the words ``format.level_of`` recognises, ranked from TRACE to
FATAL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from hodei_stream.records import LogLine
from hodei_stream.stream.format import level_of

# Each level a line may announce, and its rank: a line is kept at --level L when its rank is
# at least L's.  WARNING and CRITICAL are the spellings of WARN and FATAL some loggers use.
LEVEL_RANKS = {
    "TRACE": 0,
    "DEBUG": 1,
    "INFO": 2,
    "WARN": 3,
    "WARNING": 3,
    "ERROR": 4,
    "FATAL": 5,
    "CRITICAL": 5,
}
LEVEL_CHOICES = ("trace", "debug", "info", "warn", "error", "fatal")

_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Patterns, not compiled ones: compiled on first use (re caches them), so that stream-logs
# without --since/--until does not pay for them at start-up.
_RELATIVE = r"(?P<sign>[+-]?)(?P<parts>(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+)"
_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d)"
_TIME_OF_DAY = r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"


class BadTime(ValueError):
    """A --since / --until value that is no time: the message says which forms are."""


def parse_time(text: str, now_ns: int) -> int:
    """The moment ``text`` names, in ns since the epoch (``now_ns``: the relative forms' now)."""
    spec = text.strip()
    if (relative := re.fullmatch(_RELATIVE, spec)) is not None:
        seconds = sum(float(number) * _UNIT_S[unit] for number, unit in re.findall(_PART, relative["parts"]))
        offset_ns = int(seconds * 1e9)
        return now_ns + offset_ns if relative["sign"] == "+" else now_ns - offset_ns
    if (clock := re.fullmatch(_TIME_OF_DAY, spec)) is not None:
        hour, minute = int(clock[1]), int(clock[2])
        second = int(clock[3] or 0)
        fraction_ns = int((clock[4] or "0").ljust(9, "0"))
        if hour > 23 or minute > 59 or second > 59:
            raise BadTime(f"{text!r} is no time of day")
        today = time.localtime(now_ns // 1_000_000_000)
        midnight = time.mktime((today.tm_year, today.tm_mon, today.tm_mday, hour, minute, second, 0, 0, -1))
        return int(midnight) * 1_000_000_000 + fraction_ns
    from datetime import datetime  # here: only an ISO 8601 time needs it (start-up time)

    try:
        moment = datetime.fromisoformat(spec)
    except ValueError:
        raise BadTime(
            f"{text!r} is not a time: give 90s, 10m, 2h, 1d (ago), +10m (from now), "
            "an ISO 8601 date and time, or a time of day (14:30)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as journalctl reads it
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def window_filter(
    since_ns: int | None, until_ns: int | None, level: str | None, level_strict: bool
) -> Callable[[LogLine], bool] | None:
    """The predicate a time window (captured at or after ``since_ns``, at or before
    ``until_ns``) and a minimum level describe; None when there is none."""
    if since_ns is None and until_ns is None and level is None:
        return None
    lowest = LEVEL_RANKS[level.upper()] if level is not None else None
    earliest = since_ns if since_ns is not None else 0
    latest = until_ns if until_ns is not None else 1 << 63

    def keep(line: LogLine) -> bool:
        if not earliest <= line.captured_ns <= latest:
            return False
        if lowest is None:
            return True
        announced = level_of(line.text)
        if announced is None:
            return not level_strict
        return LEVEL_RANKS[announced] >= lowest

    return keep
