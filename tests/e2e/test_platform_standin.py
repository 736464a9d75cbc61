"""The platform stand-in itself: each fault it must reproduce, seen by a stock grpcio client."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.proto import hodei_pb2_grpc as rpc
from tests.conftest import wait_until
from tests.platform_standin.fixture import CHECKOUT, Platform

FINAL = (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED, pb.JOB_STATUS_TIMEOUT)
FAST = {"provisioning_delay": 0.05}


class Stubs:
    """grpcio stubs on one channel to a stand-in."""

    def __init__(self, url: str, options: list[tuple[str, int]] | None = None) -> None:
        self.channel = grpc.insecure_channel(url, options=options or [])
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


class Gate:
    """A FIFO outside the hidden paths: a job's ``read`` of it waits until the test opens it."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "gate"
        os.mkfifo(self.path)

    @property
    def wait(self) -> str:
        return f"read -r _ < {self.path}"

    def open(self) -> None:
        def writer() -> int | None:
            try:
                return os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: the job is not reading yet
                return None

        fd = wait_until(writer, what="the job to wait at the gate")
        os.write(fd, b"go\n")
        os.close(fd)


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    return Gate(tmp_path)


def followed(stubs: Stubs, job_id: str, gate: Gate) -> list[pb.JobLogEntry]:
    """Every entry a subscription made before the job writes (behind ``gate``) gets."""
    call = stubs.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id=job_id), timeout=30)
    call.initial_metadata()
    gate.open()
    return list(call)


@pytest.fixture
def stubs(start_platform: Callable[..., Platform]) -> Iterator[Stubs]:
    stubs = Stubs(start_platform(**FAST).url)
    yield stubs
    stubs.channel.close()


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


def test_a_jobs_lines_are_dropped_at_its_end(stubs: Stubs, gate: Gate) -> None:
    job_id = stubs.queue(f"{gate.wait}; seq 1 5")
    assert [entry.line for entry in followed(stubs, job_id, gate)] == ["1", "2", "3", "4", "5"]
    assert stubs.final(job_id).status == pb.JOB_STATUS_COMPLETED
    assert stubs.lines(job_id) == []
    late = stubs.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id=job_id, include_history=True), timeout=1.5)
    late.initial_metadata()  # an OK stream that never sends anything, and never ends
    with pytest.raises(grpc.RpcError) as silence:
        next(late)
    assert silence.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_get_logs_gives_the_last_limit_of_the_lines_kept(stubs: Stubs, gate: Gate) -> None:
    job_id = stubs.queue(f"seq 1 1200; {gate.wait}")
    wait_until(lambda: len(stubs.lines(job_id)) == 1000, what="the lines kept")
    assert stubs.lines(job_id)[0] == "201"
    assert stubs.lines(job_id, limit=3) == ["1198", "1199", "1200"]
    assert stubs.lines(job_id, since_sequence=1100, limit=2) == ["1199", "1200"]
    assert stubs.lines(job_id, since_sequence=1197) == ["1198", "1199", "1200"]
    gate.open()


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


def test_live_entries_carry_the_counter_not_their_own_sequence(
    start_platform: Callable[..., Platform], gate: Gate
) -> None:
    stubs = Stubs(start_platform(batch_size=10, flush_interval_ms=1000, **FAST).url)
    job_id = stubs.queue(f"{gate.wait}; seq 1 30")
    entries = followed(stubs, job_id, gate)
    assert [entry.line for entry in entries] == [str(n) for n in range(1, 31)]
    # Each batch of 10 is forwarded once it has all arrived: all ten carry its last number.
    assert [entry.sequence for entry in entries] == [10] * 10 + [20] * 10 + [30] * 10


def test_too_many_pings_end_the_connection(start_platform: Callable[..., Platform]) -> None:
    pinging = [
        ("grpc.keepalive_time_ms", 200),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    stubs = Stubs(start_platform(ping_interval=5, **FAST).url, pinging)
    silent = stubs.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id="no such job"), timeout=20)
    with pytest.raises(grpc.RpcError) as goaway:
        next(silent)
    assert goaway.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "too_many_pings" in goaway.value.details()
