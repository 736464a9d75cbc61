"""The platform stand-in itself: each fault it must reproduce, seen by a stock grpcio client."""

from __future__ import annotations

import os
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
