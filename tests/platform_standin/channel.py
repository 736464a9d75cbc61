"""A bounded channel with the semantics of tokio's ``mpsc`` channel, which the platform's log
service is built from: a full channel makes ``send`` wait, a closed one drains, then ends.

The faults the stand-in reproduces follow from these semantics (a call that fills a channel
nobody reads yet hangs; a slow reader holds up the writer), so they are modelled, not faked.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Channel(Generic[T]):
    """``capacity`` items in flight between senders and one receiver."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._changed = asyncio.Condition()
        self._closed = False  # every sender is gone: the receiver drains what is left, then ends
        self._receiver_gone = False  # nobody reads any more: every send fails at once

    async def send(self, item: T) -> bool:
        """Wait for room and queue ``item``; False (and nothing queued) once the receiver is gone."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._items) < self.capacity or self._receiver_gone)
            if self._receiver_gone:
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    async def receive(self) -> T | None:
        """The next item, waiting for one; None once the channel is closed and drained."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items) or self._closed)
            if not self._items:
                return None
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    async def close(self) -> None:
        """The senders are gone (tokio: the last ``Sender`` dropped)."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def drop_receiver(self) -> None:
        """The receiver is gone (tokio: the ``Receiver`` dropped): pending and later sends fail."""
        async with self._changed:
            self._receiver_gone = True
            self._items.clear()
            self._changed.notify_all()
