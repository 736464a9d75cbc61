"""``JobLog``: a job's lines in memory, the blocks not committed yet plus a window of recent ones."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from operator import attrgetter

from hodei_stream.server.store.types import LineBlock


class JobLog:
    """A job's lines in memory: consecutive blocks from ``first_sequence``; the lines before
    ``first_sequence`` are committed, and so are those up to ``committed_sequence``."""

    def __init__(self, first_sequence: int) -> None:
        self.first_sequence = first_sequence
        self.blocks: list[LineBlock] = []
        self.committed_sequence = first_sequence - 1
        self.size = 0  # bytes of the blocks' payloads and encoded messages
        self.pending_bytes = 0  # bytes of payloads not committed yet

    def append(self, block: LineBlock) -> None:
        self.blocks.append(block)
        self.size += len(block.payload)
        self.pending_bytes += len(block.payload)

    def blocks_from(self, sequence: int) -> list[LineBlock]:
        """The blocks from the one holding ``sequence`` (at least ``first_sequence``) on.  A
        slice, not ``islice``: that steps through every block before the start, and a live
        follower (near the end of up to ``store_recent_lines`` one-line blocks) would pay for all."""
        return self.blocks[max(bisect_right(self.blocks, sequence, key=FIRST_SEQUENCE) - 1, 0) :]

    def messages(self, block: LineBlock) -> tuple[bytes, array[int]]:
        """A block's lines as encoded messages, encoded when first asked for (counted in ``size``)."""
        if block.offsets is None:
            block.messages()
            self.size += len(block.encoded) + 8 * len(block.offsets)  # type: ignore[arg-type]
        return block.messages()

    def trim(self, keep_lines: int, keep_bytes: int) -> None:
        """Forget committed blocks beyond the newest ``keep_lines`` lines or ``keep_bytes``."""
        blocks = self.blocks
        last = blocks[-1].last_sequence if blocks else 0
        drop = 0
        for block in blocks:
            if block.last_sequence > self.committed_sequence or (
                last - block.last_sequence < keep_lines and self.size <= keep_bytes
            ):
                break
            self.size -= len(block.payload) + len(block.encoded) + (8 * len(block.offsets) if block.offsets else 0)
            drop += 1
        if drop:
            self.first_sequence = blocks[drop - 1].last_sequence + 1
            del blocks[:drop]


FIRST_SEQUENCE = attrgetter("first_sequence")
