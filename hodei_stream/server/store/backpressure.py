"""Backpressure: when a job's lines wait for the writer beyond the bounds in ``ServerSettings``,
the worker stops reading its supervisor until the writer catches up."""

from __future__ import annotations

from hodei_stream.server.settings import ServerSettings
from hodei_stream.server.store.job_log import JobLog
from hodei_stream.server.store.types import JobRecord


def is_backlogged(record: JobRecord, log: JobLog, pending_bytes: int, settings: ServerSettings) -> bool:
    """The job (its record and in-memory ``log``) has more than ``store_max_backlog_lines``
    lines or ``store_max_backlog_bytes`` waiting for the writer, or all jobs together
    (``pending_bytes``) more than ``store_max_pending_bytes``, and has not failed (then no
    line of it is taken any more)."""
    return not record.is_final and (
        record.line_count - log.committed_sequence > settings.store_max_backlog_lines
        or log.pending_bytes > settings.store_max_backlog_bytes
        or pending_bytes > settings.store_max_pending_bytes
    )
