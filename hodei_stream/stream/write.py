"""The only place stream-logs writes: unbuffered writes, and the broken pipe.

Lines go out in a single ``os.write`` on the file descriptor as soon as they arrive (the
lines that arrived together, in one write), so there is no buffer to flush and nothing held
back whether the output is a terminal, a pipe or a file.  A reader that went away
(``stream-logs ID | head -3``) surfaces here as ``ReaderGone`` and nowhere else.

In a CI (``CiOutput``), everything goes to the log output, in the order it happened, and
the writer keeps what is not a CI command of ours from being read as one: on GitHub inside
a ``::stop-commands::TOKEN`` block, opened before the first such line and closed before
each command of ours; on GitLab with what makes a section marker (CR, ESC[0K) escaped.  ``--raw`` leaves the
job's lines as they are.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hodei_stream.ci.output import CiOutput


class ReaderGone(Exception):
    """Whoever read our log output closed it; stop quietly (exit 0)."""


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (a write may be cut short by a signal)."""
    try:
        written = os.write(fd, data)
        if written == len(data):  # the common case, once per batch of lines: no view, no loop
            return
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        raise ReaderGone from None
    except OSError as error:
        if error.errno == errno.EPIPE:
            raise ReaderGone from None
        raise


class Writer:
    """Where each kind of output goes.

    ``log_fd`` gets the log lines (stdout, or stderr under ``--stderr``); ``notice_fd`` the
    banners, end lines and messages (stderr; the log output in a CI, whose log is one
    stream); ``export_fd`` an optional plain-text copy of every log line (``-o FILE``).
    """

    def __init__(self, log_fd: int, notice_fd: int, export_fd: int | None = None) -> None:
        self.log_fd = log_fd
        self.notice_fd = notice_fd
        self.export_fd = export_fd
        self.ci: CiOutput | None = None
        self.guarded = False  # inside our stop-commands block (GitHub)
        self.raw_lines = False  # --raw: the job's lines pass as they are, commands and all

    def in_ci(self, ci: CiOutput, raw_lines: bool) -> None:
        """Write for ``ci`` from now on (a CI that is not ``none``); ``raw_lines``: leave the
        job's lines unguarded (``--raw``)."""
        self.ci = ci
        self.raw_lines = raw_lines
        self.notice_fd = self.log_fd

    def commands(self, lines: list[str]) -> None:
        """CI commands of ours (groups, annotations): outside any stop-commands block."""
        if not lines:
            return
        write_all(self.log_fd, (self._unguarded("\n".join(lines)) + "\n").encode("utf-8", "replace"))

    def end_guard(self) -> None:
        """Close our stop-commands block, if one is open: whatever runs next in the CI's step
        has its commands read again."""
        if self.guarded and self.ci is not None:
            self.guarded = False
            write_all(self.log_fd, (self.ci.guard_off() + "\n").encode("utf-8"))

    def _unguarded(self, text: str) -> str:
        """``text`` preceded by the end of our stop-commands block, if one is open."""
        if self.guarded and self.ci is not None:
            self.guarded = False
            return f"{self.ci.guard_off()}\n{text}"
        return text

    def _inert(self, text: str) -> str:
        """``text`` (not a command of ours) as it must reach a CI's log."""
        ci = self.ci
        if ci is None:
            return text
        if ci.escapes:
            return ci.guarded(text)
        if ci.guards and not self.guarded:
            self.guarded = True
            return f"{ci.guard_on()}\n{text}"
        return text

    def log(self, shown: list[str], exported: list[str] | None = None) -> None:
        """Log lines that arrived together: ``shown`` on the log output, ``exported`` (plain)
        in the export file; one write each."""
        if self.export_fd is not None and exported:
            # The file first: a reader closing the terminal pipe must not cost the file a line.
            write_all(self.export_fd, ("\n".join(exported) + "\n").encode("utf-8", "replace"))
        if shown:
            text = "\n".join(shown)
            if self.ci is not None:
                text = self._unguarded(text) if self.raw_lines else self._inert(text)
            write_all(self.log_fd, (text + "\n").encode("utf-8", "replace"))

    def notice(self, text: str) -> None:
        """A banner, end line or message for the person watching; never fails the stream."""
        try:
            write_all(self.notice_fd, (self._inert(text) + "\n").encode("utf-8", "replace"))
        except (ReaderGone, OSError):
            pass  # nobody reads stderr any more; the log output is what matters

    def close_export(self) -> None:
        if self.export_fd is not None:
            os.close(self.export_fd)
            self.export_fd = None
