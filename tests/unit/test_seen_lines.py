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


@settings(max_examples=300, deadline=None)
@given(RUNS, st.data())
def test_a_platform_subscription_shows_its_history_and_live_lines_once(
    runs: list[tuple[str, int]], data: st.DataObject
) -> None:
    # One subscription: the history (true numbers), the whole buffer again (each copy under
    # the job's count), then live lines (numbered as each is counted).  Also when the history
    # ends with the line the buffer starts with: a buffer of one line, or of look-alikes.  (A
    # live look-alike of the history's last line, stamped at the same instant and carrying
    # the count from before it, would be that line's copy to the letter: no client can tell.)
    lines, _ = log_of(runs)
    numbered = [line._replace(sequence=number) for number, line in enumerate(lines, start=1)]
    held = data.draw(st.integers(1, len(numbered)))
    history, live = numbered[:held], numbered[held:]
    copies = [line._replace(sequence=held) for line in history]
    live_numbers = [held + 1 + offset for offset in range(len(live))]
    arriving = history + copies + [line._replace(sequence=n) for line, n in zip(live, live_numbers, strict=True)]
    source = SeenLines().new_pass()
    shown = [line for line in arriving if source.is_new(line)]
    assert [(line.text, line.captured_ns) for line in shown] == [(line.text, line.captured_ns) for line in lines]


def test_a_buffer_of_one_line_sent_again_is_shown_once() -> None:
    ready = LogLine("job", 1, 1_700_000_000_000_000_000, False, "ready")
    source = SeenLines().new_pass()
    assert source.is_new(ready)  # the history
    assert not source.is_new(ready)  # the buffer again, under the job's count: 1
    assert source.is_new(ready._replace(sequence=2))  # the job wrote it again at that instant


def test_look_alikes_forwarded_after_the_end_are_each_shown() -> None:
    source = SeenLines().new_pass()
    after_end = [LogLine("job", 0, 1_700_000_000_000_000_000, False, "retrying")] * 3
    assert all(source.is_new(line) for line in after_end)


def test_exact_sequences_keep_one_number_whatever_the_history() -> None:
    # With exact sequences the whole dedupe state is the last sequence handed on: a million
    # lines, and a replay of all of them after a reconnect, leave no record per line.
    seen = SeenLines()
    seen.exact = True
    before = dict(vars(seen))
    for sequence in range(1, 1_000_001):
        line = LogLine("job", sequence, sequence, False, "")
        assert seen.is_new(line)
        seen.add(line)
    assert not any(seen.is_new(LogLine("job", sequence, 0, False, "")) for sequence in range(1, 1_000_001, 997))
    assert seen.last_sequence == 1_000_000
    assert {name: value for name, value in vars(seen).items() if name != "last_sequence"} == {
        name: value for name, value in before.items() if name != "last_sequence"
    }
