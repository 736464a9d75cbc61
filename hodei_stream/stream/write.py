"""The only place stream-logs writes: unbuffered writes, and the broken pipe.

Lines go out in a single ``os.write`` on the file descriptor as soon as they arrive (the
lines that arrived together, in one write), so there is no buffer to flush and nothing held
back whether the output is a terminal, a pipe or a file.  A reader that went away
(``stream-logs ID | head -3``) surfaces here as ``ReaderGone`` and nowhere else.
"""

from __future__ import annotations

import errno
import os


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
    banners, end lines and messages (stderr); ``export_fd`` an optional plain-text copy of
    every log line (``-o FILE``).
    """

    def __init__(self, log_fd: int, notice_fd: int, export_fd: int | None = None) -> None:
        self.log_fd = log_fd
        self.notice_fd = notice_fd
        self.export_fd = export_fd

    def log(self, shown: list[str], exported: list[str] | None = None) -> None:
        """Log lines that arrived together: ``shown`` on the log output, ``exported`` (plain)
        in the export file; one write each."""
        if self.export_fd is not None and exported:
            # The file first: a reader closing the terminal pipe must not cost the file a line.
            write_all(self.export_fd, ("\n".join(exported) + "\n").encode("utf-8", "replace"))
        if shown:
            write_all(self.log_fd, ("\n".join(shown) + "\n").encode("utf-8", "replace"))

    def notice(self, text: str) -> None:
        """A banner, end line or message for the person watching; never fails the stream."""
        try:
            write_all(self.notice_fd, (text + "\n").encode("utf-8", "replace"))
        except (ReaderGone, OSError):
            pass  # nobody reads stderr any more; the log output is what matters

    def close_export(self) -> None:
        if self.export_fd is not None:
            os.close(self.export_fd)
            self.export_fd = None
