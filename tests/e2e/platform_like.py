"""A server that behaves as the real Hodei platform's does where it falls short
(hodei-api.md, "Where the platform's own server falls short"), to test stream-logs against it.

It is a real gRPC server (grpclib) with one job, ``JOB_ID``:
- it keeps only the job's last ``KEPT`` lines (older ones are gone);
- SubscribeLogs with ``include_history`` sends the kept history twice;
- live entries carry the job's latest sequence, not their own (batches of ``BATCH``);
- it sends no exact-sequences promise, so clients must dedupe by content.
The job writes ``--history`` lines before anyone subscribes, then ``--look-alikes`` lines
that differ only in their sequence (same instant, same text: a job that printed "retrying"
five times in one write), and ``--live`` lines after the first subscription, then completes.

    python platform_like.py unix:/path/to.sock --history 1500 --live 1500 [--look-alikes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import grpclib.server
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hodei_stream.proto import hodei_grpc
from hodei_stream.proto import hodei_pb2 as pb

JOB_ID = "0b7c1f9e-4f0e-4d8e-9a57-1a7f3c2d9e10"
KEPT = 1000
BATCH = 3
LOOK_ALIKE = "retrying"


class Job:
    def __init__(self) -> None:
        self.entries: list[pb.JobLogEntry] = []  # true sequences, as stored
        self.sequence = 0
        self.status = pb.JOB_STATUS_RUNNING
        self.changed = asyncio.Condition()
        self.first_subscriber = asyncio.Event()

    def write(self, count: int, text: str | None = None) -> list[pb.JobLogEntry]:
        """``count`` lines: ``n=<sequence>``, or all ``text`` and captured at one instant."""
        batch = []
        captured_ns = time.time_ns()
        for _ in range(count):
            self.sequence += 1
            entry = pb.JobLogEntry(job_id=JOB_ID, line=text or f"n={self.sequence}", sequence=self.sequence)
            entry.timestamp.FromNanoseconds(captured_ns if text else time.time_ns())
            batch.append(entry)
        self.entries = (self.entries + batch)[-KEPT:]
        return batch


class Jobs(hodei_grpc.JobExecutionServiceBase):
    def __init__(self, job: Job) -> None:
        self.job = job

    async def GetJob(self, stream) -> None:  # type: ignore[no-untyped-def]
        request = await stream.recv_message()
        if request.job_id.value != JOB_ID:
            raise GRPCError(Status.NOT_FOUND, "job not found")
        execution = pb.JobExecution(job_id=pb.JobId(value=JOB_ID), job_status=self.job.status)
        if self.job.status == pb.JOB_STATUS_COMPLETED:
            execution.exit_code = "0"
        await stream.send_message(
            pb.GetJobResponse(
                job=pb.JobDefinition(job_id=pb.JobId(value=JOB_ID)), status=self.job.status, executions=[execution]
            )
        )

    async def QueueJob(self, stream) -> None:  # type: ignore[no-untyped-def]
        raise GRPCError(Status.UNIMPLEMENTED)

    async def ListJobs(self, stream) -> None:  # type: ignore[no-untyped-def]
        raise GRPCError(Status.UNIMPLEMENTED)

    async def CancelJob(self, stream) -> None:  # type: ignore[no-untyped-def]
        raise GRPCError(Status.UNIMPLEMENTED)


class Logs(hodei_grpc.LogStreamServiceBase):
    def __init__(self, job: Job) -> None:
        self.job = job
        self.subscribers: list[asyncio.Queue[pb.JobLogEntry | None]] = []

    async def SubscribeLogs(self, stream) -> None:  # type: ignore[no-untyped-def]
        request = await stream.recv_message()
        queue: asyncio.Queue[pb.JobLogEntry | None] = asyncio.Queue()
        self.subscribers.append(queue)
        self.job.first_subscriber.set()
        if request.include_history:
            for _ in range(2):  # the platform's flaw: history can come twice
                for entry in list(self.job.entries):
                    await stream.send_message(entry)
        if self.job.status == pb.JOB_STATUS_COMPLETED:
            return
        while (entry := await queue.get()) is not None:
            await stream.send_message(entry)

    async def GetLogs(self, stream) -> None:  # type: ignore[no-untyped-def]
        request = await stream.recv_message()
        newer = [entry for entry in self.job.entries if entry.sequence > request.since_sequence]
        limit = request.limit or 100
        await stream.send_message(pb.GetLogsResponse(entries=newer[:limit], has_more=len(newer) > limit))

    def publish(self, batch: list[pb.JobLogEntry]) -> None:
        for entry in batch:
            stamped = pb.JobLogEntry()
            stamped.CopyFrom(entry)
            stamped.sequence = self.job.sequence  # the platform's flaw: the latest sequence
            for queue in self.subscribers:
                queue.put_nowait(stamped)

    def end(self) -> None:
        for queue in self.subscribers:
            queue.put_nowait(None)


async def run_job(job: Job, logs: Logs, history: int, look_alikes: int, live: int) -> None:
    job.write(history)
    job.write(look_alikes, LOOK_ALIKE)
    await job.first_subscriber.wait()
    for _ in range(live // BATCH):
        logs.publish(job.write(BATCH))
        await asyncio.sleep(0.002)
    job.status = pb.JOB_STATUS_COMPLETED
    logs.end()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("socket")
    parser.add_argument("--history", type=int, default=1500)
    parser.add_argument("--live", type=int, default=1500)
    parser.add_argument("--look-alikes", type=int, default=0)
    args = parser.parse_args()
    job = Job()
    logs = Logs(job)
    server = grpclib.server.Server([Jobs(job), logs])
    await server.start(path=args.socket.removeprefix("unix:"))
    Path(args.socket.removeprefix("unix:") + ".ready").touch()  # noqa: ASYNC240 (once, before serving)
    await run_job(job, logs, args.history, args.look_alikes, args.live)
    await asyncio.sleep(30)  # answer GetJob/GetLogs after the end; the test kills us
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
