"""Several jobs' lines as one stream in time order: their histories merged by capture time,
then live lines as they arrive.

Capture times are the workers' clocks: jobs on one machine (the embedded server) are in true
order to the millisecond; jobs on workers whose clocks differ are in the order of those
clocks, each job's own lines always in the order it wrote them.  Live lines are shown the
moment they arrive (no holding back to sort them): lines of different jobs written within
the same few milliseconds may come in the order they reached us.
"""

from __future__ import annotations

import heapq
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

from hodei_stream.exit_codes import ClientError
from hodei_stream.records import LogLine
from hodei_stream.stream.subscribe import Follower


def capture_time(line: LogLine) -> int:
    return line.captured_ns


def merged(histories: Iterable[list[LogLine]]) -> list[LogLine]:
    """Lines of several jobs, each list in its job's order, merged by capture time (a tie,
    or a job whose clock stepped back, keeps each job's own order)."""
    return list(heapq.merge(*histories, key=capture_time))


def history_of(follower: Follower, keep: Callable[[LogLine], bool] | None, tail: int | None) -> list[LogLine]:
    """The job's lines so far; with ``keep`` and ``tail``, the last ``tail`` lines ``keep``
    keeps (the follower then reads the whole history), else all it gives."""
    lines = (line for batch in follower.history_batches() for line in batch)
    if keep is not None and tail:
        return list(deque(filter(keep, lines), maxlen=tail))
    return list(lines)


class Lines(NamedTuple):
    """Lines of one job that arrived together."""

    batch: list[LogLine]


class Ended(NamedTuple):
    """A follower that ended: cleanly (``error`` None, its ``final`` set) or with an error."""

    follower: Follower
    error: Exception | None


class Gathering:
    """Followers read on threads of their own, their lines and ends handed to one reader
    through one queue, with whatever else ``put`` adds (the jobs a finder found)."""

    def __init__(self) -> None:
        self.arrivals: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.running = 0

    def put(self, item: object) -> None:
        self.arrivals.put(item)

    def follow(self, follower: Follower, history: Callable[[Follower], list[LogLine]] | None = None) -> None:
        """Read ``follower`` on a thread: ``history`` first (one batch) when given, then its stream."""
        self.running += 1

        def pump() -> None:
            try:
                if history is not None and (lines := history(follower)):
                    self.arrivals.put(Lines(lines))
                for batch in follower.batches():
                    self.arrivals.put(Lines(batch))
                self.arrivals.put(Ended(follower, None))
            except ClientError as error:
                self.arrivals.put(Ended(follower, error))
            except Exception as error:  # noqa: BLE001 (a cancelled stream at Ctrl+C ends its thread quietly)
                self.arrivals.put(Ended(follower, error))

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout_s: float | None) -> object | None:
        """The next arrival, or None when ``timeout_s`` passed without one."""
        try:
            item = self.arrivals.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if isinstance(item, Ended):
            self.running -= 1
        return item
