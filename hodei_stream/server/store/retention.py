"""Retention: which finished jobs the store forgets, by age and by the size of all stored logs on disk."""

from __future__ import annotations

import time
from collections.abc import Iterable

from hodei_stream.server.store.types import JobRecord


def expired(records: Iterable[JobRecord], sizes: dict[str, int], max_age_s: float, max_bytes: int) -> list[str]:
    """The finished jobs among ``records`` that ended more than ``max_age_s`` ago, then the
    oldest finished ones until the logs left (``sizes``: bytes on disk per job) fit in
    ``max_bytes``, oldest first.  A job that has not finished is never among them."""
    too_old_ns = time.time_ns() - int(max_age_s * 1e9)
    total = sum(sizes.values())
    forgotten: list[str] = []
    for record in sorted((r for r in records if r.is_final), key=lambda r: r.ended_ns):
        if record.ended_ns >= too_old_ns and total <= max_bytes:
            break  # sorted by end: every later job is younger, and the size fits
        forgotten.append(record.job_id)
        total -= sizes.get(record.job_id, 0)
    return forgotten
