"""Waking log subscribers: notification, not copying; one page read for all who are at one place.

A subscriber remembers the last sequence it sent and, when it has caught up, waits for its
job's wake-up; it then pulls the next page from the store itself (``Fanout.follow``).  Nothing
is queued per subscriber, so a slow reader costs no memory and never blocks the job or other
readers (it reads from the in-memory buffer, or from SQLite once it fell far behind).  No thread
is involved: an idle subscription is one awaiting coroutine.

What a wake costs grows with the subscribers of the job, so two things keep it in bounds:

- The subscribers that are caught up are all at the same sequence when the job wakes them, and
  would each read the same page: the first reads it from the store, the others are handed the
  same ``EncodedPage`` (the job's ``SharedPage``), so a wake is one read and a send per subscriber.
- A job is woken at most once every ``PACE_PER_WAITER_S`` per subscriber waiting on it (a job
  with 200 subscribers at most every 5 ms; one with a single subscriber every 25 µs, i.e. at
  once).  A change within that interval is handed over when it ends, with every change that
  came meanwhile: a job that writes 1,000 lines a second to 200 followers costs 200 wakes of
  200 sends a second instead of 1,000, and its first line after a pause goes out at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hodei_stream.server.store import EncodedPage, JobStore

# A job's wakes are at least this far apart per subscriber waiting on it: a wake costs each
# of them a send (~10-15 µs), so the job's subscribers take at most about half of the loop.
PACE_PER_WAITER_S = 25e-6
# The most a change waits to be handed over, whatever the number of subscribers.
MAX_PACE_S = 0.010


class JobWake(asyncio.Event):
    """A job's next change, set by ``Fanout.wake``; it counts the tasks waiting on it."""

    def __init__(self, previous_wake: float) -> None:
        super().__init__()
        self.waiting = 0
        self.previous_wake = previous_wake  # when the job's previous wake was handed over
        self.due: asyncio.TimerHandle | None = None  # a paced wake, scheduled

    async def wait(self) -> bool:  # type: ignore[override]
        self.waiting += 1
        try:
            return await super().wait()
        finally:
            self.waiting -= 1


@dataclass(frozen=True)
class SharedPage:
    """The page a job's subscriber read last: every subscriber after the same sequence gets it."""

    after_sequence: int
    page: EncodedPage


class Fanout:
    """One event per job that somebody waits on, set (and forgotten) when the job changes; and
    per job the page read last, for the subscribers at the same place."""

    def __init__(self) -> None:
        self.events: dict[str, JobWake] = {}
        self.pages: dict[str, SharedPage] = {}
        # Pages read from the store for subscribers, and pages handed to them: what tests and
        # the benchmark see the sharing by.
        self.pages_read = 0
        self.pages_handed = 0

    def waiter(self, job_id: str) -> asyncio.Event:
        """The event the next change of ``job_id`` sets.  Take it *before* reading the store,
        so that a change between the read and the wait is not missed."""
        event = self.events.get(job_id)
        if event is None:
            event = self.events[job_id] = JobWake(previous_wake=float("-inf"))
        return event

    def wake(self, job_id: str) -> None:
        """New lines or a new status for ``job_id``: wake everybody waiting on it, now or, when
        the job was woken a moment ago, once its pace allows (``PACE_PER_WAITER_S``)."""
        event = self.events.get(job_id)
        if event is None or event.due is not None:
            return  # nobody waits, or a wake is on its way that will hand this change over too
        loop = asyncio.get_running_loop()
        due = event.previous_wake + min(event.waiting * PACE_PER_WAITER_S, MAX_PACE_S)
        if loop.time() >= due:
            self._wake_now(job_id, event)
        else:
            event.due = loop.call_at(due, self._wake_now, job_id, event)

    def _wake_now(self, job_id: str, event: JobWake) -> None:
        del self.events[job_id]
        event.set()
        if event.waiting:
            self.events[job_id] = JobWake(previous_wake=asyncio.get_running_loop().time())

    async def follow(self, store: JobStore, job_id: str, after_sequence: int) -> AsyncIterator[EncodedPage]:
        """Pages of ``job_id``'s lines with sequence > ``after_sequence``, encoded for the wire,
        live, until the job is final and every line was yielded.  Each line exactly once, in order."""
        try:
            while True:
                changed = self.waiter(job_id)
                # Read "final" before the lines: the last lines are stored before the final
                # status, so a final job whose read comes back empty has nothing more to give.
                final = store.is_final(job_id)
                page = await self.page_after(store, job_id, after_sequence)
                if page:
                    after_sequence = page.last_sequence
                    yield page
                elif final:
                    return
                else:
                    await changed.wait()
        finally:
            if not (event := self.events.get(job_id)) or not event.waiting:
                self.pages.pop(job_id, None)  # the last subscriber gone: the job's page with it

    async def page_after(self, store: JobStore, job_id: str, after_sequence: int) -> EncodedPage | None:
        """The store's page of ``job_id`` after ``after_sequence``, or the same page another
        subscriber read from there (lines never change once stored: it is still right, and
        whatever came since is in the next page).  A subscriber that has caught up learns it
        from the job's line count, not from a read (most of a wake's cost would be those reads)."""
        record = store.get(job_id)
        if record is not None and record.line_count <= after_sequence:
            return None
        shared = self.pages.get(job_id)
        if shared is not None and shared.after_sequence == after_sequence:
            self.pages_handed += 1
            return shared.page
        page = await store.read_encoded(job_id, after_sequence)
        self.pages_read += 1
        if page is not None:
            self.pages_handed += 1
            self.pages[job_id] = SharedPage(after_sequence, page)
        return page
