"""Waking log subscribers: notification, not copying.

A subscriber remembers the last sequence it sent and, when it has caught up, waits for its
job's wake-up; it then pulls the next page from the store itself (``JobStore.follow``).  Nothing is queued per
subscriber, so a slow reader costs no memory and never blocks the job or other readers (it
reads from the in-memory buffer, or from SQLite once it fell far behind).  No thread is
involved: an idle subscription is one awaiting coroutine.
"""

from __future__ import annotations

import asyncio


class Fanout:
    """One event per job that somebody waits on; set (and forgotten) when the job changes."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}

    def waiter(self, job_id: str) -> asyncio.Event:
        """The event the next change of ``job_id`` sets.  Take it *before* reading the store,
        so that a change between the read and the wait is not missed."""
        event = self.events.get(job_id)
        if event is None:
            event = self.events[job_id] = asyncio.Event()
        return event

    def wake(self, job_id: str) -> None:
        """New lines or a new status for ``job_id``: wake everybody waiting on it."""
        if event := self.events.pop(job_id, None):
            event.set()
