"""``JobLog``: a job's lines in memory, the pages not committed yet plus a window of recent ones."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from operator import attrgetter

from hodei_stream.server.store.types import Page


class JobLog:
    """A job's lines in memory: consecutive pages from ``first_sequence``; the lines before
    ``first_sequence`` are committed, and so are those up to ``committed_sequence``."""

    def __init__(self, first_sequence: int) -> None:
        self.first_sequence = first_sequence
        self.pages: list[Page] = []
        self.committed_sequence = first_sequence - 1
        self.size = 0  # bytes of the pages' payloads and encoded messages
        self.pending_bytes = 0  # bytes of payloads not committed yet

    def append(self, page: Page) -> None:
        self.pages.append(page)
        self.size += len(page.payload)
        self.pending_bytes += len(page.payload)

    def pages_from(self, sequence: int) -> list[Page]:
        """The pages from the one holding ``sequence`` (at least ``first_sequence``) on.  A
        slice, not ``islice``: that steps through every page before the start, and a live
        follower (near the end of up to ``store_recent_lines`` one-line pages) would pay for all."""
        return self.pages[max(bisect_right(self.pages, sequence, key=FIRST_SEQUENCE) - 1, 0) :]

    def messages(self, page: Page) -> tuple[bytes, array[int]]:
        """A page's lines as encoded messages, encoded when first asked for (counted in ``size``)."""
        if page.offsets is None:
            page.messages()
            self.size += len(page.encoded) + 8 * len(page.offsets)  # type: ignore[arg-type]
        return page.messages()

    def trim(self, keep_lines: int, keep_bytes: int) -> None:
        """Forget committed pages beyond the newest ``keep_lines`` lines or ``keep_bytes``."""
        pages = self.pages
        last = pages[-1].last_sequence if pages else 0
        drop = 0
        for page in pages:
            if page.last_sequence > self.committed_sequence or (
                last - page.last_sequence < keep_lines and self.size <= keep_bytes
            ):
                break
            self.size -= len(page.payload) + len(page.encoded) + (8 * len(page.offsets) if page.offsets else 0)
            drop += 1
        if drop:
            self.first_sequence = pages[drop - 1].last_sequence + 1
            del pages[:drop]


FIRST_SEQUENCE = attrgetter("first_sequence")
