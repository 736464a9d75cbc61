"""The benchmark measures honestly: its parser, loss/order check and percentiles on known input."""

from __future__ import annotations

import pytest

from hodei_stream.bench.measure import (
    Arrival,
    check_delivery,
    latency_report,
    percentiles,
    rate_per_s,
    recorded_streams,
    split_lines,
    stamp_line,
    stamped,
)
from hodei_stream.bench.report import goal

MS = 1_000_000


def arrivals(*pairs: tuple[int, str]) -> list[Arrival]:
    return [Arrival(at, text.encode()) for at, text in pairs]


def test_a_line_cut_across_reads_arrives_with_the_read_that_completes_it() -> None:
    lines, tail = split_lines([(1, b"BENCH 0 10\nBEN"), (2, b"CH 1 20"), (3, b"\r\nBENCH 2 30\nBENCH 3")])
    assert [(a.arrived_ns, a.line) for a in lines] == [(1, b"BENCH 0 10"), (3, b"BENCH 1 20"), (3, b"BENCH 2 30")]
    assert tail == b"BENCH 3"  # unfinished: not counted as shown


def test_the_stamp_is_found_inside_whatever_a_client_wraps_it_in() -> None:
    found = stamped(
        arrivals(
            (5, "📡 Streaming logs for job: x"),
            (6, "\x1b[90m14:23:45.123\x1b[0m \x1b[32m[OUT]\x1b[0m BENCH 0 1"),
            (7, '  "line": "BENCH 1 2",'),
            (8, "{"),
        )
    )
    assert [(s.index, s.written_ns, s.arrived_ns) for s in found] == [(0, 1, 6), (1, 2, 7)]


def test_stamp_line_matches_what_the_parser_reads() -> None:
    assert stamped(arrivals((9, stamp_line(4, 123))))[0].index == 4


@pytest.mark.parametrize(
    ("indices", "expected", "missing", "duplicates", "out_of_order"),
    [
        ([0, 1, 2, 3], 4, 0, 0, 0),
        ([0, 1, 3], 4, 1, 0, 0),  # a gap
        ([0, 1, 1, 2, 3], 4, 0, 1, 0),  # a repeat
        ([0, 2, 1, 3], 4, 0, 0, 1),  # reordered
        ([0, 1, 2, 3, 2], 4, 0, 1, 0),  # repeated late: a duplicate, not reordering
        ([], 3, 3, 0, 0),  # nothing shown (the original pipeline)
        ([0, 1, 2, 3, 4], 4, 0, 0, 0),  # more than expected: not "once, in order" either
    ],
)
def test_delivery_check(indices: list[int], expected: int, missing: int, duplicates: int, out_of_order: int) -> None:
    delivery = check_delivery(indices, expected)
    assert (delivery.missing, delivery.duplicates, delivery.out_of_order) == (missing, duplicates, out_of_order)
    assert delivery.once_in_order == (indices == list(range(expected)))


def test_verdict_names_each_problem() -> None:
    assert check_delivery([0, 1, 2], 3).verdict() == "all once, in order"
    assert check_delivery([0, 2, 2], 4).verdict() == "3/4 received, 2 missing, 1 repeated"


def test_percentiles_are_nearest_rank_observations() -> None:
    result = percentiles([n * MS for n in range(100, 0, -1)])  # 1..100 ms, any order
    assert result is not None
    assert (result.count, result.p50_ms, result.p90_ms, result.p99_ms, result.max_ms) == (100, 50, 90, 99, 100)
    single = percentiles([7 * MS])
    assert single is not None and single.p50_ms == single.p99_ms == 7
    assert percentiles([]) is None


def test_latency_counts_each_line_once_and_the_share_shown_while_the_job_wrote() -> None:
    lines = arrivals(
        (10 * MS + 1 * MS, "BENCH 0 10000000"),  # 1 ms late
        (20 * MS + 2 * MS, "BENCH 1 20000000"),  # 2 ms
        (40 * MS, "BENCH 1 20000000"),  # repeated later: its first sighting counts
        (30 * MS + 4 * MS, "BENCH 2 30000000"),  # 4 ms, after the last write
    )
    report = latency_report(lines, expected=3)
    assert report.delivery.duplicates == 1
    assert report.latency is not None and (report.latency.p50_ms, report.latency.max_ms) == (2, 4)
    assert report.shown_before_last_write == pytest.approx(2 / 3)


def test_nothing_shown_is_zero_share_and_no_latency() -> None:
    report = latency_report(arrivals((1, '"line": "fragment"')), expected=5)
    assert report.latency is None and report.shown_before_last_write == 0.0
    assert report.delivery.missing == 5


def test_rate_is_from_first_to_last_arrival() -> None:
    lines = arrivals(*((n * MS, stamp_line(n, 0)) for n in range(1001)))  # 1,001 lines over 1 s
    assert rate_per_s(lines) == pytest.approx(1000.0)
    assert rate_per_s(lines[:1]) == 0.0


def test_recorded_streams_from_one_process_of_followers() -> None:
    parsed = recorded_streams(
        b"0 1000 BENCH 0 900\n1 1002 BENCH 0 900\n0 1001 BENCH 1 901\nfollower 1: oops\n7 5 x\n", 2
    )
    assert [[(a.arrived_ns, a.line) for a in kept] for kept in parsed] == [
        [(1000, b"BENCH 0 900"), (1001, b"BENCH 1 901")],
        [(1002, b"BENCH 0 900")],
    ]


def test_goals_say_met_or_missed_beside_the_value() -> None:
    assert goal(42.0, "≤", 50, "ms") == "≤ 50 ms: met"
    assert goal(120_000.0, "≥", 150_000, "") == "≥ 150,000: missed"
    assert goal(None, "≤", 128, "MiB") == "≤ 128 MiB"
    assert goal(42.0, "≤", 50, "ms", judged=False) == "≤ 50 ms: at full sizes only"
