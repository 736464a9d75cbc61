"""Log subscribers: a job's new lines handed to those caught up, without waking their tasks.

A subscriber (``Fanout.follow``) remembers the last sequence it sent.  While it is behind, it
pulls pages from the store itself and sends them from its own task (waiting for flow-control
credit when its reader is slow): nothing is queued per subscriber, so a slow reader costs no
memory and never blocks the job or other readers.

Once it has caught up it parks: it leaves the fanout a ``Subscriber`` (where it is, and how to
write to its stream without waiting) and waits.  When the job changes, the fanout hands the new
lines to each parked subscriber itself, in one pass: the page is read from the in-memory buffer
once (``SharedPage``) and the same bytes are written to every stream that can take them at once
(its window has room, its transport is not paused).  Their tasks are not woken at all, which
was most of what a line cost with 200 subscribers.  A subscriber that cannot take them (a full
window, a closed stream, lines no longer in memory) is woken to go on by itself, and all of
them are once the job is final.

Each change costs a write per parked subscriber, so a job's hand-overs are paced: at most one
every ``PACE_PER_SUBSCRIBER_S`` per parked subscriber (200 subscribers: every 5 ms; one: at
once), and never further apart than ``MAX_PACE_S``.  A change within that interval is handed
over when it ends, with every change that came meanwhile; the first line after a pause goes
out at once.  A job that writes 1,000 lines a second to 200 followers costs 200 hand-overs of
200 writes a second instead of 1,000.

Whoever else waits for a job's change (the store, for a new job's commit) takes ``waiter``:
an event set at every change, at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hodei_stream.server.store import EncodedPage, JobStore

# A job's hand-overs are at least this far apart per subscriber parked on it: a hand-over
# costs each of them a write (~5-10 µs), so they take at most about a third of the loop.
PACE_PER_SUBSCRIBER_S = 25e-6
# The most a change waits to be handed over, whatever the number of subscribers.
MAX_PACE_S = 0.010


@dataclass(eq=False)
class Subscriber:
    """A caught-up subscriber, parked until its job changes."""

    after_sequence: int  # the last line its stream was given
    deliver: Callable[[bytes], bool]  # writes encoded messages to its stream at once, or says it cannot
    woken: asyncio.Future[None]  # done when it is to go on by itself


@dataclass(eq=False)
class JobFollowers:
    """A job's subscribers: how many follow it, those parked, and the pace of its hand-overs."""

    store: JobStore
    following: int = 0
    parked: dict[Subscriber, None] = field(default_factory=dict)  # (a set, in the order they parked)
    previous_hand_over: float = float("-inf")
    due: asyncio.TimerHandle | None = None  # a paced hand-over, scheduled


@dataclass(frozen=True)
class SharedPage:
    """The page a job's subscriber was given last: every subscriber after the same sequence gets it."""

    after_sequence: int
    page: EncodedPage


class Fanout:
    """Per job: its subscribers, the page read last for those at the same place, and an event
    for whoever else waits on its next change."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.followers: dict[str, JobFollowers] = {}
        self.pages: dict[str, SharedPage] = {}
        # What tests and the benchmark see the sharing by: pages read from the store for
        # subscribers, pages given to them, and those the fanout wrote to a parked one itself.
        self.pages_read = 0
        self.pages_handed = 0
        self.pages_written = 0

    def waiter(self, job_id: str) -> asyncio.Event:
        """The event the next change of ``job_id`` sets.  Take it *before* reading the store,
        so that a change between the read and the wait is not missed."""
        event = self.events.get(job_id)
        if event is None:
            event = self.events[job_id] = asyncio.Event()
        return event

    def wake(self, job_id: str) -> None:
        """New lines or a new status for ``job_id``: set its event, and hand the change to its
        parked subscribers, now or, when they were handed one a moment ago, once the pace
        allows (``PACE_PER_SUBSCRIBER_S``)."""
        if (event := self.events.pop(job_id, None)) is not None:
            event.set()
        followers = self.followers.get(job_id)
        if followers is None or not followers.parked or followers.due is not None:
            return  # nobody parked, or a hand-over is on its way that takes this change too
        loop = asyncio.get_running_loop()
        due = followers.previous_hand_over + min(len(followers.parked) * PACE_PER_SUBSCRIBER_S, MAX_PACE_S)
        if loop.time() >= due:
            self._hand_over(job_id, followers)
        else:
            followers.due = loop.call_at(due, self._hand_over, job_id, followers)

    def _hand_over(self, job_id: str, followers: JobFollowers) -> None:
        """Write the job's new lines to each parked subscriber that can take them at once;
        wake the others (all of them once the job is final)."""
        followers.due = None
        followers.previous_hand_over = asyncio.get_running_loop().time()
        record = followers.store.get(job_id)
        for subscriber in list(followers.parked):
            if subscriber.woken.done():
                continue  # cancelled: its call is ending, and it leaves by itself
            if (
                record is not None
                and not record.is_final
                and self._caught_up(followers.store, job_id, subscriber, record.line_count)
            ):
                continue  # given all there is: it stays parked
            del followers.parked[subscriber]
            subscriber.woken.set_result(None)

    def _caught_up(self, store: JobStore, job_id: str, subscriber: Subscriber, line_count: int) -> bool:
        """Write to ``subscriber`` the lines up to ``line_count`` from memory; whether all of
        them could be written at once.  Each page takes it further, so this ends."""
        while subscriber.after_sequence < line_count:
            page = self._page_now(store, job_id, subscriber.after_sequence)
            if page is None or not subscriber.deliver(page.data):
                return False
            subscriber.after_sequence = page.last_sequence
            self.pages_written += 1
        return True

    async def follow(
        self, store: JobStore, job_id: str, after_sequence: int, deliver: Callable[[bytes], bool]
    ) -> AsyncIterator[EncodedPage]:
        """Pages of ``job_id``'s lines with sequence > ``after_sequence``, encoded for the wire,
        live, until the job is final and every line was given.  The pages this yields are the
        caller's to send; while it waits, the fanout writes pages with ``deliver`` itself.
        Each line exactly once, in order, by one way or the other."""
        followers = self.followers.get(job_id)
        if followers is None:
            followers = self.followers[job_id] = JobFollowers(store)
        followers.following += 1
        try:
            while True:
                # Read "final" before the lines: the last lines are stored before the final
                # status, so a final job whose read comes back empty has nothing more to give.
                final = store.is_final(job_id)
                page = await self.page_after(store, job_id, after_sequence)
                if page:
                    after_sequence = page.last_sequence
                    yield page
                elif final:
                    return
                elif not self._changed_since(store, job_id, after_sequence):
                    after_sequence = await self._parked(followers, after_sequence, deliver)
        finally:
            followers.following -= 1
            if not followers.following and self.followers.get(job_id) is followers:
                # The last subscriber gone: the job's page and pace with it.
                del self.followers[job_id]
                self.pages.pop(job_id, None)
                if followers.due is not None:
                    followers.due.cancel()

    @staticmethod
    def _changed_since(store: JobStore, job_id: str, after_sequence: int) -> bool:
        """Whether ``job_id`` has lines after ``after_sequence`` or is final: a read that waited
        (a page from disk) may have missed a change, which parking would then miss too."""
        record = store.get(job_id)
        return record is None or record.is_final or record.line_count > after_sequence

    async def _parked(self, followers: JobFollowers, after_sequence: int, deliver: Callable[[bytes], bool]) -> int:
        """Park a subscriber after ``after_sequence`` until it is to go on by itself; the last
        line its stream was given by then."""
        subscriber = Subscriber(after_sequence, deliver, asyncio.get_running_loop().create_future())
        followers.parked[subscriber] = None
        try:
            await subscriber.woken
        finally:
            followers.parked.pop(subscriber, None)
        return subscriber.after_sequence

    async def page_after(self, store: JobStore, job_id: str, after_sequence: int) -> EncodedPage | None:
        """The store's page of ``job_id`` after ``after_sequence``, or the same page another
        subscriber was given from there (lines never change once stored: it is still right, and
        whatever came since is in the next page).  A subscriber that has caught up learns it
        from the job's line count, not from a read (most of a wake's cost would be those reads)."""
        record = store.get(job_id)
        if record is not None and record.line_count <= after_sequence:
            return None
        if (shared := self._shared_page(job_id, after_sequence)) is not None:
            return shared
        return self._remember(job_id, after_sequence, await store.read_encoded(job_id, after_sequence))

    def _page_now(self, store: JobStore, job_id: str, after_sequence: int) -> EncodedPage | None:
        """``page_after`` without waiting: None also when the page is not in memory."""
        if (shared := self._shared_page(job_id, after_sequence)) is not None:
            return shared
        if not store.in_memory(job_id, after_sequence):
            return None
        return self._remember(job_id, after_sequence, store.encoded_in_memory(job_id, after_sequence))

    def _shared_page(self, job_id: str, after_sequence: int) -> EncodedPage | None:
        shared = self.pages.get(job_id)
        if shared is None or shared.after_sequence != after_sequence:
            return None
        self.pages_handed += 1
        return shared.page

    def _remember(self, job_id: str, after_sequence: int, page: EncodedPage | None) -> EncodedPage | None:
        """A page just read from the store, kept for the next subscriber at the same place."""
        self.pages_read += 1
        if page is not None:
            self.pages_handed += 1
            self.pages[job_id] = SharedPage(after_sequence, page)
        return page
