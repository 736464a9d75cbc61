"""Paging: the lines after a sequence, as many as fit in one page, either as ``LogLine`` objects
(GetLogs) or as the encoded gRPC messages SubscribeLogs sends."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable
from itertools import accumulate

from hodei_stream.records import LogLine
from hodei_stream.server.entries import payload_lines
from hodei_stream.server.store.types import EncodedPage, LineBlock

# A page, what one GetLogs answer or one write to a SubscribeLogs stream carries: at most this
# many lines, and no more encoded bytes than fit comfortably under a client's default 4 MiB
# message limit (always at least one line, up to 2 MiB long).
PAGE_LINES = 5000
PAGE_BYTES = 3 * 1024 * 1024
# What a line costs in a GetLogsResponse beyond its UTF-8 text, at most: the entry's tag and
# length, the job id, sequence, timestamp, stream flag and the text's own tag and length (85).
ENTRY_OVERHEAD_BYTES = 96


def _fitting(sizes: list[int]) -> int:
    """How many of the first items of these sizes fit in ``PAGE_BYTES`` (one at least: a
    bigger item goes alone)."""
    return max(bisect_right(list(accumulate(sizes)), PAGE_BYTES), min(1, len(sizes)))


def first_page(lines: list[LogLine]) -> list[LogLine]:
    """The first of ``lines`` that fit in one page, sized as encoded (a '€' is 3 bytes)."""
    return lines[: _fitting([ENTRY_OVERHEAD_BYTES + _utf8_size(line.text) for line in lines])]


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())  # isascii: O(1) in CPython


def lines_after(blocks: Iterable[LineBlock], after_sequence: int, limit: int) -> list[LogLine]:
    """Up to ``limit`` lines of these consecutive blocks with sequence > ``after_sequence``."""
    lines: list[LogLine] = []
    for block in blocks:
        if block.last_sequence <= after_sequence:
            continue
        lines += payload_lines(block.job_id, block.payload, after_sequence, limit - len(lines))
        if len(lines) >= limit:
            break
    return lines


def encoded_page(
    blocks: Iterable[LineBlock], after_sequence: int, messages: Callable[[LineBlock], tuple[bytes, array[int]]]
) -> EncodedPage | None:
    """The encoded messages of the lines after ``after_sequence`` in these consecutive blocks,
    as many as fit in one page; None when there is none."""
    parts: list[bytes | memoryview] = []
    size = count = 0
    last = after_sequence
    for block in blocks:
        if block.last_sequence <= last:
            continue
        data, offsets = messages(block)
        skip = max(last + 1 - block.first_sequence, 0)  # (blocks converted from log_lines may have gaps)
        begin = offsets[skip]
        end = len(offsets) - 1  # the index after the block's last line
        fits = min(bisect_right(offsets, begin + PAGE_BYTES - size) - 1, skip + PAGE_LINES - count, end)
        if fits <= skip:
            if parts:
                break
            fits = skip + 1  # a line bigger than a page goes alone
        parts.append(data if skip == 0 and fits == end else memoryview(data)[begin : offsets[fits]])
        size += offsets[fits] - begin
        count += fits - skip
        last = block.first_sequence + fits - 1
        if fits < end:
            break  # the page is full
    if not parts:
        return None
    return EncodedPage(last, parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts))
