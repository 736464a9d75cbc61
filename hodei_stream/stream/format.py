"""Turn records into the text stream-logs shows: pure functions, no I/O.

Every function here takes what it needs (the record, a ``Style``) and returns a string, so
the table tests in ``tests/unit/test_format.py`` pin the exact output.  Colour is decided by
the caller (``cli.py``) for the stream actually written, and only passed in here.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from typing import NamedTuple

from hodei_stream.records import LogLine

RESET = "\033[0m"
GREEN = "\033[32m"
RED = "\033[31m"
YELLOW = "\033[33m"
GREY = "\033[90m"
DIM = "\033[2m"
BOLD_RED = "\033[1;31m"
# Stable per-job label colours (as stern gives each pod one): bright, readable on dark and
# light backgrounds; red and green are left out so a label never looks like [ERR]/[OUT].
LABEL_COLOURS = ("\033[36m", "\033[35m", "\033[34m", "\033[33m", "\033[96m", "\033[95m", "\033[94m", "\033[93m")
HEADER_RULE = "─" * 64

# A level word in the shapes logs use: "ERROR", "[error]", "<warn>", "level=warn", "WARN:".
# Upper-case bare words only, so that prose ("no error found") is not coloured.
_LEVEL_PATTERN = re.compile(
    r"(?:\b(?P<upper>FATAL|CRITICAL|ERROR|WARNING|WARN|INFO|DEBUG|TRACE)\b)"
    r"|(?:[\[<](?P<bracketed>(?i:fatal|critical|error|warning|warn|info|debug|trace))[\]>])"
    r"|(?:\blevel=\"?(?P<keyvalue>(?i:fatal|critical|error|warning|warn|info|debug|trace))\b)"
)
_LEVEL_COLOURS = {
    "FATAL": BOLD_RED,
    "CRITICAL": BOLD_RED,
    "ERROR": RED,
    "WARNING": YELLOW,
    "WARN": YELLOW,
    "INFO": "",
    "DEBUG": DIM,
    "TRACE": DIM,
}


# Control characters a terminal acts on: C0 but tab, DEL, and C1 (U+0080-U+009F, where
# U+009B is a one-character CSI).  A job's line with one of them could set the window title,
# clear the screen or draw a fake end line; on a terminal they are shown as \xHH instead.
_VISIBLE = {chr(code): f"\\x{code:02x}" for code in (*range(0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0))}
_CONTROLS = re.compile(f"[{re.escape(''.join(_VISIBLE))}]")  # the same set, as one character class


def _escaped(match: re.Match[str]) -> str:
    return _VISIBLE[match.group()]


def visible(text: str) -> str:
    """``text`` with its control characters (not tab) as ``\\xHH``: safe on a terminal.

    The hot path: ``isprintable`` (a C loop, ~0.15 µs a line here) clears almost every line;
    a line with a tab or a non-ASCII space gets one precompiled search; only a line that
    really holds a control character is rewritten.
    """
    if text.isprintable() or _CONTROLS.search(text) is None:
        return text
    return _CONTROLS.sub(_escaped, text)


class Style:
    """How lines are shown (a slotted class, not a dataclass: ``dataclasses`` costs stream-logs
    ~10 ms of start-up); set once per run, never changed."""

    __slots__ = ("colour", "escape", "job_labels", "labels", "timestamps")

    def __init__(
        self,
        colour: bool = False,
        timestamps: bool = True,
        job_labels: bool = False,
        escape: bool = False,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.colour = colour
        self.timestamps = timestamps
        self.job_labels = job_labels  # prefix each line with its job's label (several jobs)
        self.escape = escape  # show control characters as \xHH (a terminal, without --raw)
        # Each job's label by id (a job not in it: the short id); jobs that join later are
        # added to it as they join, and a job's label never changes once given.
        self.labels = {} if labels is None else labels

    def label(self, job_id: str) -> str:
        """What labels ``job_id``'s lines and end line among several jobs."""
        return self.labels.get(job_id) or job_label(job_id)


def job_label(job_id: str) -> str:
    """The short name of a job in multi-job output: the first block of its UUID."""
    return job_id[:8]


def label_colour(job_id: str) -> str:
    """A colour for the job that stays the same from run to run (a hash of its id)."""
    import zlib  # here: only coloured output of several jobs needs it (start-up time)

    return LABEL_COLOURS[zlib.crc32(job_id.encode()) % len(LABEL_COLOURS)]


def level_of(text: str) -> str | None:
    """The log level the line announces (``ERROR``, ``WARN``…), or None."""
    match = _LEVEL_PATTERN.search(text)
    if match is None:
        return None
    return (match.group("upper") or match.group("bracketed") or match.group("keyvalue")).upper()


@lru_cache(maxsize=4)
def _clock(seconds: int) -> str:
    # Cached: a burst of lines shares a handful of seconds, and localtime() is the costly part.
    return time.strftime("%H:%M:%S", time.localtime(seconds))


# The last millisecond shown and its text: a burst's lines share their millisecond, hundreds
# at a time, and a comparison costs a fifth of the formatting.
_last_clock: tuple[int, str] = (-1, "")


def clock_ms(epoch_ns: int) -> str:
    """``HH:MM:SS.mmm`` in local time for a time in ns since the epoch."""
    global _last_clock  # a cache of one
    ms = epoch_ns // 1_000_000
    cached_ms, shown = _last_clock
    if ms == cached_ms:
        return shown
    seconds, millis = divmod(ms, 1000)
    shown = f"{_clock(seconds)}.{millis:03d}"
    _last_clock = ms, shown
    return shown


def format_line(line: LogLine, style: Style, shown_ns: int | None = None) -> str:
    """One log line as shown: ``[label ]HH:MM:SS.mmm [OUT] text`` (no newline).

    ``shown_ns`` replaces the capture time (the ``--arrival-time`` option).
    """
    tag = "[ERR]" if line.is_stderr else "[OUT]"
    text = line.text
    if style.escape:
        text = visible(text)
    # Strings put together directly, not a list joined: this runs once per line shown.
    if style.colour:
        level = level_of(text)
        colour = _LEVEL_COLOURS.get(level, "") if level else ""
        shown = f"{RED if line.is_stderr else GREEN}{tag}{RESET} {f'{colour}{text}{RESET}' if colour else text}"
        if style.timestamps:
            shown = f"{GREY}{clock_ms(shown_ns or line.captured_ns)}{RESET} {shown}"
        if style.job_labels:
            shown = f"{label_colour(line.job_id)}{style.label(line.job_id)}{RESET} {shown}"
        return shown
    shown = f"{clock_ms(shown_ns or line.captured_ns)} {tag} {text}" if style.timestamps else f"{tag} {text}"
    if style.job_labels:
        return f"{style.label(line.job_id)} {shown}"
    return shown


def format_lines(lines: list[LogLine], style: Style, shown_ns: int | None = None) -> list[str]:
    """``format_line`` of each of lines that arrived together.

    Plain lines with their capture time (the output of a pipe or a file, and the bulk of a
    history) are made in one loop, a call less per line; other styles line by line.
    """
    if style.colour or style.job_labels or not style.timestamps or shown_ns is not None:
        return [format_line(line, style, shown_ns) for line in lines]
    escape = style.escape
    shown: list[str] = []
    append = shown.append
    cached_ms, clock = -1, ""
    for _, _, captured_ns, is_stderr, text in lines:
        if captured_ns // 1_000_000 != cached_ms:  # a burst's lines share their millisecond
            cached_ms, clock = captured_ns // 1_000_000, clock_ms(captured_ns)
        if escape and not text.isprintable():
            text = visible(text)
        append(f"{clock} {'[ERR]' if is_stderr else '[OUT]'} {text}")
    return shown


def rfc3339_ns(epoch_ns: int) -> str:
    """``2026-11-27T14:32:19.123456789Z``: RFC 3339 in UTC with nanoseconds."""
    seconds, ns = divmod(epoch_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns:09d}Z"


def format_json(line: LogLine) -> str:
    """One log line as a JSON object on one line (the ``--json`` output)."""
    import json  # here: only --json needs it (start-up time); a cached import after the first line

    return json.dumps(
        {
            "job_id": line.job_id,
            "sequence": line.sequence,
            "timestamp": rfc3339_ns(line.captured_ns),
            "stream": line.stream,
            "line": line.text,
        },
        ensure_ascii=False,
    )


def format_header(job_id: str, colour: bool) -> str:
    """The banner before a job's lines (two lines, no final newline)."""
    rule = f"{GREY}{HEADER_RULE}{RESET}" if colour else HEADER_RULE
    return f"📡 Streaming logs for job: {job_id}\n{rule}"


def format_joined(job_id: str, label: str, colour: bool) -> str:
    """The line when a job chosen by what it is (--all, --name, --tag) joins the watch."""
    shown = f"{label_colour(job_id)}{label}{RESET}" if colour else label
    return f"{shown} 🆕 job {job_id} joined"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m{rest:02d}s"


# How a failed job without an exit code is reported (the end line, ``hodei status``).
UNKNOWN_EXIT_CODE = "exit code unknown"


class Ending(NamedTuple):
    """How a job's stream ended, for the end line."""

    job_id: str
    status: str  # COMPLETED, FAILED, CANCELLED, TIMEOUT, or a non-final status if we gave up
    exit_code: str  # as the server sent it ("" when none)
    duration_s: float | None
    error_message: str = ""
    how: str = "stream ended"  # e.g. "stream ended", "no-follow: history shown"


def format_ending(ending: Ending, colour: bool, label: str = "") -> str:
    """The end line: how the stream ended, the job's final status, exit code and duration."""
    ok = ending.status == "COMPLETED"
    mark = "✅" if ok else "❌" if ending.status in ("FAILED", "CANCELLED", "TIMEOUT") else "⏳"
    status = ending.status
    if colour:
        status = f"{GREEN if ok else RED}{status}{RESET}"
    details = [f"job {status}"]
    if ending.exit_code:
        details.append(f"exit code {ending.exit_code}")
    elif ending.status == "FAILED":  # a Hodei platform does not pass a failed job's code on
        details.append(UNKNOWN_EXIT_CODE)
    if ending.duration_s is not None:
        details.append(f"took {format_duration(ending.duration_s)}")
    if ending.error_message:  # text from the server (a cancel reason, say): kept to one safe line
        details.append(visible(ending.error_message))
    prefix = f"{label} " if label else ""
    return f"{prefix}{mark} {ending.how}: " + ", ".join(details)
