"""The platform stand-in itself: each fault it must reproduce, seen by a stock grpcio client."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.proto import hodei_pb2_grpc as rpc
from tests.conftest import wait_until
from tests.platform_standin.fixture import CANNOT_RUN_ELSEWHERE, CHECKOUT, Gate, Platform, job_processes
from tests.platform_standin.worker import SEND_TIMEOUT_S

FINAL = (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED, pb.JOB_STATUS_TIMEOUT)
FAST = {"provisioning_delay": 0.05}


class Stubs:
    """grpcio stubs on one channel to a stand-in (``platform``)."""

    def __init__(self, platform: Platform, options: list[tuple[str, int]] | None = None) -> None:
        self.platform = platform
        self.channel = grpc.insecure_channel(platform.url, options=options or [])
        self.jobs = rpc.JobExecutionServiceStub(self.channel)
        self.logs = rpc.LogStreamServiceStub(self.channel)

    def queue(self, script: str, timeout_s: int | None = None, **fields: object) -> str:
        definition = pb.JobDefinition(command="/bin/bash", arguments=["-c", script], **fields)  # type: ignore[arg-type]
        if timeout_s is not None:
            definition.timeout.execution_timeout.seconds = timeout_s
        return self.jobs.QueueJob(pb.QueueJobRequest(job_definition=definition), timeout=10).job_id.value

    def job(self, job_id: str) -> pb.GetJobResponse:
        return self.jobs.GetJob(pb.GetJobRequest(job_id=pb.JobId(value=job_id)), timeout=10)

    def final(self, job_id: str, timeout: float = 15.0) -> pb.GetJobResponse:
        return wait_until(lambda: (job := self.job(job_id)).status in FINAL and job, timeout, f"job {job_id} to end")

    def lines(self, job_id: str, **request: int) -> list[str]:
        reply = self.logs.GetLogs(pb.GetLogsRequest(job_id=job_id, **request), timeout=10)
        assert not reply.has_more
        return [entry.line for entry in reply.entries]


def followed(stubs: Stubs, job_id: str, gate: Gate) -> list[pb.JobLogEntry]:
    """Every entry a subscription made before the job writes (behind ``gate``) gets."""
    call = stubs.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id=job_id), timeout=30)
    call.initial_metadata()
    gate.open()
    return list(call)


@pytest.fixture
def connect(start_platform: Callable[..., Platform]) -> Iterator[Callable[..., Stubs]]:
    """``connect(channel_options, **standin_options)``: stubs to a new stand-in (fast provisioning)."""
    opened: list[Stubs] = []

    def start(channel_options: list[tuple[str, int]] | None = None, **options: float) -> Stubs:
        opened.append(Stubs(start_platform(**{**FAST, **options}), channel_options))
        return opened[-1]

    yield start
    for stubs in opened:
        stubs.channel.close()


@pytest.fixture
def stubs(connect: Callable[..., Stubs]) -> Stubs:
    return connect()


def test_a_job_sees_nothing_of_the_client(stubs: Stubs, home: Path, gate: Gate) -> None:
    (home / "client-file").write_text("the client's\n")
    script = f"""
        {gate.wait}
        test -e {home}/client-file && echo home-visible || echo home-hidden
        test -e {CHECKOUT}/pyproject.toml && echo checkout-visible || echo checkout-hidden
        echo "folder=$PWD"; echo "state=${{HODEI_STREAM_HOME:-unset}}"
        echo made > here.txt; cat here.txt
    """
    job_id = stubs.queue(script)
    lines = [entry.line for entry in followed(stubs, job_id, gate)]
    assert lines[:2] == ["home-hidden", "checkout-hidden"]
    folder = lines[2].removeprefix("folder=")
    assert not folder.startswith((str(home), str(CHECKOUT))) and lines[3] == "state=unset"
    assert stubs.final(job_id).status == pb.JOB_STATUS_COMPLETED
    assert not os.path.exists(folder)  # the worker's folder went with the job


def test_list_jobs_fails_whenever_the_page_has_rows(stubs: Stubs) -> None:
    assert stubs.jobs.ListJobs(pb.ListJobsRequest(), timeout=10).total_count == 0  # an empty page answers
    stubs.queue("true")
    with pytest.raises(grpc.RpcError) as failure:
        stubs.jobs.ListJobs(pb.ListJobsRequest(status=pb.JOB_STATUS_TIMEOUT), timeout=10)  # filters ignored
    assert failure.value.code() == grpc.StatusCode.CANCELLED
    assert "Received RST_STREAM with error code 8" in failure.value.details()
    assert stubs.jobs.ListJobs(pb.ListJobsRequest(offset=1), timeout=10).total_count == 1


def test_get_job_answers_as_the_platform(stubs: Stubs) -> None:
    completed = stubs.queue("exit 0", description="dropped", tags=["dropped"])
    failed = stubs.queue("exit 3")
    timed_out = stubs.queue("sleep 30", timeout_s=1)
    seen = [stubs.job(completed).status]
    seen += [wait_until(lambda: (status := stubs.job(completed).status) != seen[-1] and status, what="a change")]
    assert seen == [pb.JOB_STATUS_PENDING, pb.JOB_STATUS_ASSIGNED]
    job = stubs.final(completed)
    assert job.job.name == f"Job {completed[:8]}" and not job.job.description and not job.job.tags
    (execution,) = job.executions
    assert not execution.HasField("start_time") and not execution.HasField("end_time")
    assert not execution.HasField("worker_id")
    answers = {job_id: stubs.final(job_id) for job_id in (completed, failed, timed_out)}
    assert [(a.status, a.executions[0].exit_code, a.executions[0].error_message) for a in answers.values()] == [
        (pb.JOB_STATUS_COMPLETED, "0", ""),
        (pb.JOB_STATUS_FAILED, "", "Worker reported failure"),
        (pb.JOB_STATUS_TIMEOUT, "0", "TIMEOUT: Job timed out after 1 seconds"),
    ]
    spawn_error = stubs.final(
        stubs.jobs.QueueJob(
            pb.QueueJobRequest(job_definition=pb.JobDefinition(command="/no/such")), timeout=10
        ).job_id.value
    )
    assert (spawn_error.status, spawn_error.executions[0].error_message) == (
        pb.JOB_STATUS_FAILED,
        "Failed to spawn command '/no/such': No such file or directory (os error 2)",
    )
    with pytest.raises(grpc.RpcError) as failure:
        stubs.jobs.CancelJob(pb.CancelJobRequest(job_id=pb.JobId(value=completed)), timeout=10)
    assert failure.value.details() == f"Invalid job state transition from SUCCEEDED to CANCELLED for job {completed}"
    for value, code, details in [
        ("", grpc.StatusCode.INVALID_ARGUMENT, "job_id is required"),
        ("nope", grpc.StatusCode.INVALID_ARGUMENT, "job_id must be a UUID"),
        ("0b7c1f9e-4f0e-4d8e-9a57-1a7f3c2d9e10", grpc.StatusCode.NOT_FOUND, "Job not found"),
    ]:
        with pytest.raises(grpc.RpcError) as failure:
            stubs.job(value)
        assert (failure.value.code(), failure.value.details()) == (code, details)


def test_a_cancelled_job_runs_on_and_its_lines_keep_coming(stubs: Stubs, gate: Gate) -> None:
    job_id = stubs.queue(f"echo before; {gate.wait}; echo after; sleep 30")  # its end would drop its lines
    wait_until(lambda: stubs.lines(job_id) == ["before"], what="the first line")
    reply = stubs.jobs.CancelJob(pb.CancelJobRequest(job_id=pb.JobId(value=job_id)), timeout=10)
    assert reply.message == "Job cancellation requested"
    assert stubs.job(job_id).status == pb.JOB_STATUS_CANCELLED
    gate.open()
    wait_until(lambda: stubs.lines(job_id) == ["before", "after"], what="the line written after the cancel")


def test_a_jobs_lines_are_dropped_at_its_end_and_any_id_gets_a_silent_stream(stubs: Stubs, gate: Gate) -> None:
    job_id = stubs.queue(f"{gate.wait}; seq 1 5")
    assert [entry.line for entry in followed(stubs, job_id, gate)] == ["1", "2", "3", "4", "5"]
    assert stubs.final(job_id).status == pb.JOB_STATUS_COMPLETED
    assert stubs.lines(job_id) == []
    for subscribed in (job_id, job_id.upper(), "no such job"):
        late = stubs.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id=subscribed, include_history=True), timeout=1)
        late.initial_metadata()  # an OK stream that never sends anything, and never ends
        with pytest.raises(grpc.RpcError) as silence:
            next(late)
        assert silence.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_get_logs_gives_the_last_limit_of_the_lines_kept(stubs: Stubs, gate: Gate) -> None:
    job_id = stubs.queue(f"seq 1 1200; {gate.wait}")
    # All 1,200 written (a length of 1,000 comes while they still arrive): the last 1,000 kept.
    wait_until(lambda: stubs.lines(job_id, limit=1) == ["1200"], what="the job's last line")
    assert len(stubs.lines(job_id)) == 1000
    assert stubs.lines(job_id)[0] == "201"
    assert stubs.lines(job_id, limit=3) == ["1198", "1199", "1200"]
    assert stubs.lines(job_id, since_sequence=1100, limit=2) == ["1199", "1200"]
    assert stubs.lines(job_id, since_sequence=1197) == ["1198", "1199", "1200"]
    gate.open()


def test_history_then_the_whole_buffer_again_whatever_tail_lines_says(stubs: Stubs, gate: Gate) -> None:
    job_id = stubs.queue(f"seq 1 50; {gate.wait}")
    wait_until(lambda: len(stubs.lines(job_id)) == 50, what="50 lines kept")
    call = stubs.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id=job_id, include_history=True, tail_lines=5))
    call.initial_metadata()
    gate.open()  # the job ends: the stream ends after what was queued
    entries = [(entry.line, entry.sequence) for entry in call]
    # The history with true sequences, then the buffer again, numbered with the counter (50).
    assert entries == [(str(n), n) for n in range(46, 51)] + [(str(n), 50) for n in range(1, 51)]


def headers_within(call: grpc.Call, seconds: float) -> bool:
    """Whether the call's response headers come within ``seconds``."""
    headers = threading.Event()
    threading.Thread(target=lambda: call.initial_metadata() is not None and headers.set(), daemon=True).start()
    return headers.wait(seconds)


def test_subscribing_with_over_100_lines_kept_hangs_without_headers_and_stalls_intake(stubs: Stubs, gate: Gate) -> None:
    job_id = stubs.queue(f"seq 1 150; {gate.wait}; echo more; sleep 30")
    wait_until(lambda: len(stubs.lines(job_id)) == 150, what="150 lines kept")
    for include_history in (True, False):
        call = stubs.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id=job_id, include_history=include_history))
        assert not headers_within(call, 2.0)
        if not include_history:
            # It holds the job's buffer: a line written now waits, while GetLogs still answers.
            gate.open()
            time.sleep(1.0)  # four flushes of the worker's
            assert len(stubs.lines(job_id)) == 150
        call.cancel()
    wait_until(lambda: stubs.lines(job_id)[-1:] == ["more"], what="the stalled line once the subscriber left")


def test_live_entries_carry_the_counter_not_their_sequence(connect: Callable[..., Stubs], gate: Gate) -> None:
    stubs = connect(batch_size=10, flush_interval_ms=5000)
    job_id = stubs.queue(f"{gate.wait}; seq 1 10; sleep 0.3; seq 11 20; sleep 0.3; seq 21 30")
    entries = followed(stubs, job_id, gate)
    assert [entry.line for entry in entries] == [str(n) for n in range(1, 31)]
    # A batch's first line carries the count from before it arrived, the others their batch's last.
    assert [entry.sequence for entry in entries] == [0] + [10] * 10 + [20] * 10 + [30] * 9


def test_too_many_pings_end_the_connection(connect: Callable[..., Stubs]) -> None:
    pinging = [
        ("grpc.keepalive_time_ms", 200),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    stubs = connect(pinging, ping_interval=5)
    silent = stubs.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id="no such job"), timeout=20)
    with pytest.raises(grpc.RpcError) as goaway:
        next(silent)
    assert goaway.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "too_many_pings" in goaway.value.details()


def test_queue_job_refuses_what_the_platform_refuses_and_runs_a_known_id_again(stubs: Stubs, gate: Gate) -> None:
    for fields, details in [
        (
            {"timeout": {"execution_timeout": {"seconds": 0}}},
            "Invalid job spec field timeout_ms: Job timeout must be greater than 0",
        ),
        ({"requirements": {"memory_bytes": 1024}}, "Invalid job spec field memory_mb: Memory must be greater than 0"),
    ]:
        definition = pb.JobDefinition(command="/bin/true", **fields)  # type: ignore[arg-type]
        with pytest.raises(grpc.RpcError) as refusal:
            stubs.jobs.QueueJob(pb.QueueJobRequest(job_definition=definition), timeout=10)
        assert (refusal.value.code(), refusal.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, details)
    job_id = stubs.queue("exit 0")
    assert stubs.final(job_id).status == pb.JOB_STATUS_COMPLETED
    assert stubs.queue(f"echo again; {gate.wait}", job_id=pb.JobId(value=job_id)) == job_id
    wait_until(lambda: stubs.lines(job_id) == ["again"], what="the job run again")
    assert stubs.job(job_id).status == pb.JOB_STATUS_RUNNING


def test_a_line_that_is_not_utf8_ends_the_reading_of_its_pipe(stubs: Stubs, gate: Gate) -> None:
    job_id = stubs.queue(f"{gate.wait}; echo a; printf '\\xff\\n'; echo b; echo c >&2")
    assert [entry.line for entry in followed(stubs, job_id, gate)] == ["a", "c"]


def test_lines_flushed_after_a_timeout_count_again_from_1(connect: Callable[..., Stubs]) -> None:
    # The worker's auto-flush outlives the job it timed out: what it held arrives after the end.
    stubs = connect(flush_interval_ms=1500)
    job_id = stubs.queue("seq 1 3; sleep 30", timeout_s=1)
    assert stubs.final(job_id).status == pb.JOB_STATUS_TIMEOUT
    arrived = wait_until(
        lambda: stubs.logs.GetLogs(pb.GetLogsRequest(job_id=job_id), timeout=10).entries, what="the late lines"
    )
    assert [(entry.line, entry.sequence) for entry in arrived] == [("1", 1), ("2", 2), ("3", 3)]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run the stand-in as another user")
def test_without_root_the_standin_refuses_with_the_reason(tmp_path: Path) -> None:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    command = [*nobody, sys.executable, "-m", "tests.platform_standin", "--ready-file", str(tmp_path / "address")]
    result = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=60)
    assert result.returncode == CANNOT_RUN_ELSEWHERE
    assert result.stderr.startswith("platform stand-in: cannot run jobs elsewhere: unshare --mount (needs root): ")


def test_a_timeout_kills_the_direct_child_only_and_stopping_kills_the_rest(stubs: Stubs) -> None:
    platform = stubs.platform
    job_id = stubs.queue("setsid sleep 300 & echo $!; sleep 300", timeout_s=1)
    left = int(wait_until(lambda: stubs.lines(job_id), what="the child's pid")[0])
    assert stubs.final(job_id).status == pb.JOB_STATUS_TIMEOUT
    assert Path(f"/proc/{left}").exists() and left in job_processes(platform.process.pid)
    platform.stop()
    assert job_processes(platform.process.pid) == []


def test_a_batch_that_finds_no_room_for_5_s_is_dropped(connect: Callable[..., Stubs], gate: Gate) -> None:
    stubs = connect(batch_size=1)
    job_id = stubs.queue(f"seq 1 150; {gate.wait}; seq 151 400; sleep 300")
    wait_until(lambda: len(stubs.lines(job_id)) == 150, what="150 lines kept")
    hanging = stubs.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id=job_id))  # stalls the job's intake
    assert not headers_within(hanging, 1.0)
    gate.open()
    # Line 151 waits for the intake, 152-251 fill the worker's channel, 252 waits 5 s for room.
    time.sleep(SEND_TIMEOUT_S + 1)
    hanging.cancel()
    wait_until(lambda: stubs.lines(job_id, limit=1) == ["400"], what="the rest once the subscriber left")
    assert stubs.lines(job_id) == [str(n) for n in range(1, 401) if n != 252]
