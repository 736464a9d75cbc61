"""What the benchmark concludes from bytes it read: pure functions, no I/O, unit-tested.

Every benchmark job writes lines stamped ``BENCH <index> <written_ns>``: its own count from 0
and its own ``time.time_ns()`` at the write.  Whatever a client adds around them (a
timestamp and ``[OUT]``, colours, grpcurl's JSON), the stamp is found inside the line, so one
parser serves every client.  From the stamps and the times lines arrived it computes:

- ``split_lines``: output read in chunks → complete lines, each timed by the chunk that
  completed it (a line cut across two reads arrives with the second);
- ``check_delivery``: every index once and in order, or what is missing, repeated, reordered;
- ``percentiles`` and ``latency_report``: arrival − written, and the share of lines shown
  before the job wrote its last line (the original pipeline's failing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

STAMP = re.compile(rb"BENCH (\d+) (\d+)")


def stamp_line(index: int, written_ns: int) -> str:
    """The text a benchmark job writes (the payloads build the same text in the job)."""
    return f"BENCH {index} {written_ns}"


@dataclass(frozen=True, slots=True)
class Arrival:
    arrived_ns: int  # when the reader got the chunk that completed the line
    line: bytes  # without its newline (and without a pty's \r)


@dataclass(frozen=True, slots=True)
class Stamped:
    index: int
    written_ns: int
    arrived_ns: int

    @property
    def latency_ns(self) -> int:
        return self.arrived_ns - self.written_ns


def split_lines(chunks: Iterable[tuple[int, bytes]]) -> tuple[list[Arrival], bytes]:
    """Chunks as read (arrival time, bytes) → complete lines, and the unfinished tail."""
    lines: list[Arrival] = []
    pending = b""
    for arrived_ns, chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        lines.extend(Arrival(arrived_ns, line.removesuffix(b"\r")) for line in complete)
    return lines, pending


def stamped(lines: Iterable[Arrival]) -> list[Stamped]:
    """The benchmark lines among ``lines`` (banners, JSON braces and the like are skipped)."""
    found: list[Stamped] = []
    for arrival in lines:
        match = STAMP.search(arrival.line)
        if match is not None:
            found.append(Stamped(int(match[1]), int(match[2]), arrival.arrived_ns))
    return found


@dataclass(frozen=True, slots=True)
class Delivery:
    expected: int
    received: int  # stamped lines seen, repeats included
    missing: int  # indices in 0..expected-1 never seen
    duplicates: int  # lines whose index had been seen before
    out_of_order: int  # first sightings of an index lower than one already seen

    @property
    def once_in_order(self) -> bool:
        return self.missing == 0 and self.duplicates == 0 and self.out_of_order == 0 and self.received == self.expected

    def verdict(self) -> str:
        if self.once_in_order:
            return "all once, in order"
        problems = [f"{self.received}/{self.expected} received"]
        for count, what in (
            (self.missing, "missing"),
            (self.duplicates, "repeated"),
            (self.out_of_order, "out of order"),
        ):
            if count:
                problems.append(f"{count} {what}")
        return ", ".join(problems)


def check_delivery(indices: Sequence[int], expected: int) -> Delivery:
    """Whether ``indices`` (as they arrived) are exactly 0..expected-1, each once, in order."""
    seen: set[int] = set()
    duplicates = out_of_order = 0
    highest = -1
    for index in indices:
        if index in seen:
            duplicates += 1
            continue
        seen.add(index)
        if index < highest:
            out_of_order += 1
        highest = max(highest, index)
    missing = sum(1 for index in range(expected) if index not in seen)
    return Delivery(expected, len(indices), missing, duplicates, out_of_order)


@dataclass(frozen=True, slots=True)
class Percentiles:
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def percentiles(values_ns: Sequence[int]) -> Percentiles | None:
    """Nearest-rank percentiles in milliseconds (None for no values): p99 of 100 values is
    the 99th smallest, never an interpolation between two real observations."""
    if not values_ns:
        return None
    ordered = sorted(values_ns)

    def rank(q: float) -> float:
        position = max(1, -(-int(q * 1000) * len(ordered) // 1000))  # ceil(q × n), exact
        return ordered[position - 1] / 1e6

    return Percentiles(len(ordered), rank(0.50), rank(0.90), rank(0.99), ordered[-1] / 1e6)


@dataclass(frozen=True, slots=True)
class LatencyReport:
    delivery: Delivery
    latency: Percentiles | None
    shown_before_last_write: float  # share of the expected lines on screen before the job's last write
    latencies_ns: list[int]  # of each line's first sighting, in arrival order


def latency_report(lines: Iterable[Arrival], expected: int) -> LatencyReport:
    """Latency of the first sighting of each line, and the share shown while the job still wrote."""
    found = stamped(lines)
    delivery = check_delivery([line.index for line in found], expected)
    first_sightings: dict[int, Stamped] = {}
    for line in found:
        first_sightings.setdefault(line.index, line)
    last_write_ns = max((line.written_ns for line in first_sightings.values()), default=0)
    shown_early = sum(1 for line in first_sightings.values() if line.arrived_ns < last_write_ns)
    latencies_ns = [line.latency_ns for line in first_sightings.values()]
    return LatencyReport(
        delivery=delivery,
        latency=percentiles(latencies_ns),
        shown_before_last_write=shown_early / expected if expected else 0.0,
        latencies_ns=latencies_ns,
    )


def rate_per_s(arrivals: Sequence[Arrival]) -> float:
    """Lines per second from the first arrival to the last: the client's pace once lines
    flow, its start-up left out (0 with fewer than two lines)."""
    if len(arrivals) < 2:
        return 0.0
    elapsed_ns = arrivals[-1].arrived_ns - arrivals[0].arrived_ns
    return (len(arrivals) - 1) / (elapsed_ns / 1e9) if elapsed_ns > 0 else 0.0


def recorded_streams(text: bytes, streams: int) -> list[list[Arrival]]:
    """What each of ``streams`` followers in one process kept, from their records
    ``<follower> <arrival_ns> <line>`` (``--streams``); other lines (errors) are skipped."""
    per_stream: list[list[Arrival]] = [[] for _ in range(streams)]
    for record in text.splitlines():
        follower, _, rest = record.partition(b" ")
        arrived, _, line = rest.partition(b" ")
        if follower.isdigit() and arrived.isdigit() and int(follower) < streams:
            per_stream[int(follower)].append(Arrival(int(arrived), line))
    return per_stream
