"""The fan-out, load and flood scenarios' parts against a real embedded server, at a few lines:
the followers in one process (native and Python) record every line of their job once, in
order, a small load run reports what happened, and a small flood opens every stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from hodei_stream.bench import flood, tools
from hodei_stream.bench.followers import Followers
from hodei_stream.bench.load import load_run
from hodei_stream.bench.plan import Plan, Sizes
from hodei_stream.bench.tools import Tools
from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.proto import hodei_pb2 as pb

DEADLINE_S = 30.0


@pytest.fixture(params=["native", "python-grpcio"])
def follower_tools(request: pytest.FixtureRequest) -> Tools:
    """The tools as set up, for the native follower (skipped when not built), or none: the
    Python fallback."""
    if request.param == "python-grpcio":
        return Tools()
    found = tools.locate()
    if found.native_client is None:
        pytest.skip(f"the native client: {found.missing.get('native')}")
    return found


def test_followers_in_one_process_record_each_line_of_their_job(
    follower_tools: Tools, server: Server, tmp_path: Path
) -> None:
    with HodeiClient(server) as client:
        jobs = [
            client.queue_job(tag, "/bin/sh", ["-c", f"seq 1 {count} | sed s/^/{tag}/"])
            for tag, count in (("a", 5), ("b", 3))
        ]
        for job_id in jobs:
            assert client.wait_final(job_id).status == pb.JOB_STATUS_COMPLETED
    followers = Followers(follower_tools, 3, server.target, jobs, tmp_path / "followers.out")
    assert followers.wait(DEADLINE_S), followers.errors()
    records = followers.records()
    assert [[arrival.line for arrival in kept] for kept in records] == [
        [f"a{n}".encode() for n in range(1, 6)],  # follower i follows jobs[i % 2]
        [f"b{n}".encode() for n in range(1, 4)],
        [f"a{n}".encode() for n in range(1, 6)],
    ]
    for kept in records:
        arrivals = [arrival.arrived_ns for arrival in kept]
        assert arrivals == sorted(arrivals) and arrivals[0] > 0


def test_a_small_load_run_reports_every_job_and_follower(server: Server, tmp_path: Path) -> None:
    result = load_run(server.target, Tools(), tmp_path, jobs=3, lines=200, followers=2)
    assert result.completed == 3 and result.complete == 2, result
    assert result.follower_kind == "python-grpcio"
    assert 0 < result.jobs_ended_s <= result.run_s < DEADLINE_S
    assert result.lines_per_s == pytest.approx(600 / result.run_s)


def test_a_small_flood_run_opens_every_stream_and_reads_the_servers_memory() -> None:
    plan = Plan(Sizes(flood_streams=150), target="", external=False, tools=Tools(), clients={})
    [row] = flood.run(plan)
    assert row.values["opened"] == "150/150", row
    assert "descriptors" not in row.note, row.note  # every connection closed was reaped
    before, peak, after = (row.values[key] for key in ("before_mib", "peak_mib", "after_mib"))
    assert isinstance(before, float) and isinstance(peak, float) and isinstance(after, float)
    assert 0 < before <= peak and after <= peak
    assert str(row.values["grown_goal"]).endswith("at full sizes only")
