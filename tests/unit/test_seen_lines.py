"""The dedupe by content of stream-logs (hodei_stream/stream/subscribe.py, ``SeenLines`` and
``ContentPass``) for a server without exact sequences: sources that each go through the log
in order, repeating part of what was shown, show every line once, look-alikes as often as
the job wrote them, in bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hodei_stream.records import LogLine
from hodei_stream.stream import subscribe
from hodei_stream.stream.subscribe import SeenLines, content_key

# A log as runs: (text, how many times the job wrote it at one instant).  Each run has an
# instant of its own, as a worker stamps lines it reads at different times.
RUNS = st.lists(st.tuples(st.sampled_from(["a", "b", "retrying", ""]), st.integers(1, 5)), min_size=1, max_size=40)


def log_of(runs: list[tuple[str, int]]) -> tuple[list[LogLine], list[int]]:
    """The log's lines (sequence 0: the server's numbers say nothing) and where runs start."""
    lines: list[LogLine] = []
    starts = []
    for instant, (text, times) in enumerate(runs):
        starts.append(len(lines))
        lines += [LogLine("job", 0, 1_700_000_000_000_000_000 + instant, False, text)] * times
    return lines, starts


@settings(max_examples=300, deadline=None)
@given(RUNS, st.data())
def test_sources_that_repeat_what_was_shown_show_each_line_once(
    runs: list[tuple[str, int]], data: st.DataObject
) -> None:
    lines, starts = log_of(runs)
    seen = SeenLines()
    shown: list[LogLine] = []
    end = 0  # how far into the log the sources have come
    for _ in range(data.draw(st.integers(1, 6))):
        # A source starts where a run starts, at or before the end of what was shown (the
        # platform's buffer sent again, a round of GetLogs), and goes on from there.
        start = data.draw(st.sampled_from([s for s in starts if s <= end]))
        stop = data.draw(st.integers(start, len(lines)))
        source = seen.new_pass()
        shown += [line for line in lines[start:stop] if source.is_new(line)]
        end = max(end, stop)
    assert shown == lines[:end]


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subscribe, "SEEN_WINDOW", 100)
    seen = SeenLines()
    source = seen.new_pass()
    lines = [LogLine("job", 0, n, False, f"line {n}") for n in range(1000)]
    assert all(source.is_new(line) for line in lines)
    assert sum(1 for line in lines if seen.times_shown(content_key(line))) == 100
    # The newest are still known; the oldest are forgotten.
    again = seen.new_pass()
    assert not any(again.is_new(line) for line in lines[-100:])
    assert seen.new_pass().is_new(lines[0])
