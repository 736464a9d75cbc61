"""The one record a log line travels in, from the wire to the formatter.

``LogLine`` is decoded straight from a ``JobLogEntry``'s bytes (``stream/messages.py``); every
later stage (dedupe, filters, the formatter, the writers, ``--stats``) sees only this.
"""

from __future__ import annotations

from typing import NamedTuple

# Initial metadata of SubscribeLogs by which a server promises exact sequences (1, 2, 3…
# per job, each line once), so that clients can dedupe by sequence alone.  Ours sends it;
# the platform's own server does not: its live entries carry the job's latest sequence
# instead of their own.
EXACT_SEQUENCES_HEADER = ("x-hodei-sequences", "exact")
# Initial metadata of SubscribeLogs with its value: how many lines the job had written when
# the subscription began, the sequence its history ends with.  A client that wants the
# history only (--no-follow) reads up to it and closes, running job or not.
HISTORY_LINES_HEADER = "x-hodei-history-lines"


class LogLine(NamedTuple):
    # A NamedTuple, not a frozen dataclass: as immutable, and built several times faster,
    # which counts at a hundred thousand lines a second.
    job_id: str
    sequence: int  # counts the job's lines from 1; 0 when a server does not number them
    captured_ns: int  # when the worker captured the line, ns since the epoch (UTC)
    is_stderr: bool
    text: str  # the line as the job wrote it, without its newline

    @property
    def stream(self) -> str:
        return "stderr" if self.is_stderr else "stdout"
