"""The supervisor's side of its link to the worker: the job's lines gathered into batches."""

from __future__ import annotations


class LogBatcher:
    """Holds line records (``supervisor_protocol.line_records``) until ``capacity`` are pending
    or the oldest waited ``flush_interval_s``."""

    def __init__(self, capacity: int, flush_interval_s: float) -> None:
        self.capacity = capacity
        self.flush_interval_s = flush_interval_s
        self.pending: list[bytes] = []
        self.oldest_at = 0.0

    def add(self, records: list[bytes], now: float) -> None:
        if records and not self.pending:
            self.oldest_at = now
        self.pending += records

    def due_in(self, now: float) -> float | None:
        """Seconds until a flush is due (0: now), None when nothing is pending."""
        if not self.pending:
            return None
        if len(self.pending) >= self.capacity:
            return 0.0
        return max(0.0, self.oldest_at + self.flush_interval_s - now)

    def take(self) -> list[bytes]:
        records, self.pending = self.pending, []
        return records
