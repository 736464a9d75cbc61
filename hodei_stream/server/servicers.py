"""The gRPC layer (grpclib): validate the request, call the store or the worker, answer.

Kept thin on purpose: what a job is and how its lines flow lives in ``store``, ``worker`` and
``fanout``, what a request may hold in ``validation``.  Errors the client can act on: a
malformed id or job definition → INVALID_ARGUMENT, an unknown job → NOT_FOUND, a new job
while the store cannot write → UNAVAILABLE (``StoreUnavailable``'s message).  The platform's
worker-facing rpcs are not in our proto, so they are answered UNIMPLEMENTED (``rpc``).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from grpclib import GRPCError, Status
from grpclib.server import Stream

from hodei_stream.api import MAX_LIST_LIMIT, QUEUED_AT_KEY
from hodei_stream.proto import hodei_grpc
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import EXACT_SEQUENCES_HEADER, HISTORY_LINES_HEADER
from hodei_stream.server.entries import log_entry
from hodei_stream.server.fanout import Fanout
from hodei_stream.server.rpc import StreamWriter
from hodei_stream.server.store import PAGE_LINES, JobRecord, JobStore, StoreUnavailable
from hodei_stream.server.validation import (
    MAX_REASON_CHARS,
    MAX_SEARCH_CHARS,
    check_definition,
    check_text,
    parse_job_id,
)
from hodei_stream.server.worker import Worker

DEFAULT_LIST_LIMIT = 50
DEFAULT_LOGS_LIMIT = 1000
WORKER_ID = "embedded"
EXECUTION_STATE = {
    pb.JOB_STATUS_PENDING: pb.EXECUTION_STATE_CREATED,
    pb.JOB_STATUS_QUEUED: pb.EXECUTION_STATE_CREATED,
    pb.JOB_STATUS_ASSIGNED: pb.EXECUTION_STATE_STARTING,
    pb.JOB_STATUS_RUNNING: pb.EXECUTION_STATE_RUNNING,
    pb.JOB_STATUS_COMPLETED: pb.EXECUTION_STATE_COMPLETED,
    pb.JOB_STATUS_FAILED: pb.EXECUTION_STATE_FAILED,
    pb.JOB_STATUS_CANCELLED: pb.EXECUTION_STATE_CANCELLED,
    pb.JOB_STATUS_TIMEOUT: pb.EXECUTION_STATE_TIMEOUT,
}


def find_job(store: JobStore, value: str) -> JobRecord:
    job_id = parse_job_id(value)
    record = store.get(job_id)
    if record is None:
        raise GRPCError(Status.NOT_FOUND, f"no job {job_id}")
    return record


def timestamp(ns: int) -> Timestamp:
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def rfc3339_us(ns: int) -> str:
    """``2026-12-02T03:40:00.123456+00:00``: what ``datetime.fromisoformat`` reads back on 3.10."""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).isoformat(timespec="microseconds")


def execution(record: JobRecord) -> pb.JobExecution:
    result = pb.JobExecution(
        execution_id=pb.ExecutionId(value=record.job_id),  # one execution per job: same id
        job_id=pb.JobId(value=record.job_id),
        worker_id=pb.WorkerId(value=WORKER_ID),
        state=EXECUTION_STATE[record.status],
        job_status=record.status,
        exit_code=record.exit_code,
        error_message=record.error_message,
        metadata={QUEUED_AT_KEY: rfc3339_us(record.created_ns)},
    )
    if record.started_ns:
        result.start_time.CopyFrom(timestamp(record.started_ns))
    if record.ended_ns:
        result.end_time.CopyFrom(timestamp(record.ended_ns))
    return result


def summary(record: JobRecord) -> pb.JobSummary:
    result = pb.JobSummary(
        job_id=pb.JobId(value=record.job_id),
        name=record.name,
        status=record.status,
        created_at=timestamp(record.created_ns),
        progress_percentage=100 if record.is_final else 0,
    )
    if record.started_ns:
        result.started_at.CopyFrom(timestamp(record.started_ns))
    if record.ended_ns:
        result.completed_at.CopyFrom(timestamp(record.ended_ns))
        if record.started_ns:
            result.duration.CopyFrom(
                Duration(
                    seconds=(record.ended_ns - record.started_ns) // 1_000_000_000,
                    nanos=(record.ended_ns - record.started_ns) % 1_000_000_000,
                )
            )
    return result


class JobExecutionService(hodei_grpc.JobExecutionServiceBase):
    def __init__(self, store: JobStore, worker: Worker) -> None:
        self.store = store
        self.worker = worker

    async def QueueJob(self, stream: Stream[pb.QueueJobRequest, pb.QueueJobResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        definition = request.job_definition
        check_definition(definition)
        job_id = parse_job_id(definition.job_id.value) if definition.job_id.value else str(uuid.uuid4())
        definition.job_id.value = job_id
        queued_ns = time.time_ns()
        record = JobRecord(job_id=job_id, name=definition.name, status=pb.JOB_STATUS_QUEUED, created_ns=queued_ns)
        try:
            if not self.store.create_job(record, definition.SerializeToString()):
                raise GRPCError(Status.ALREADY_EXISTS, f"a job {job_id} exists already")
            self.worker.launch(job_id, definition)
            # Answered once the job is committed: a server killed after the answer still knows
            # the job (its supervisor, already started, would otherwise be told to forget it).
            await self.store.committed(job_id)
        except StoreUnavailable as error:
            raise GRPCError(Status.UNAVAILABLE, str(error)) from error
        await stream.send_message(
            pb.QueueJobResponse(
                success=True, message="queued", queued_at=timestamp(queued_ns), job_id=pb.JobId(value=job_id)
            )
        )

    async def GetJob(self, stream: Stream[pb.GetJobRequest, pb.GetJobResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        record = find_job(self.store, request.job_id.value)
        definition = pb.JobDefinition.FromString(await self.store.definition(record.job_id))
        await stream.send_message(
            pb.GetJobResponse(job=definition, status=record.status, executions=[execution(record)])
        )

    async def ListJobs(self, stream: Stream[pb.ListJobsRequest, pb.ListJobsResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        check_text("search_term", request.search_term, MAX_SEARCH_CHARS)
        limit = min(request.limit, MAX_LIST_LIMIT) if request.limit > 0 else DEFAULT_LIST_LIMIT
        records, total = self.store.list_jobs(
            limit=limit,
            offset=max(request.offset, 0),
            status=request.status if request.HasField("status") else None,
            search=request.search_term,
        )
        await stream.send_message(pb.ListJobsResponse(jobs=[summary(r) for r in records], total_count=total))

    async def CancelJob(self, stream: Stream[pb.CancelJobRequest, pb.CancelJobResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        check_text("reason", request.reason, MAX_REASON_CHARS)
        # The execution id is the job id here, so either names the job.
        record = find_job(self.store, request.job_id.value or request.execution_id.value)
        if record.is_final or not self.worker.cancel(record.job_id, request.reason or "requested by a client"):
            message = f"the job has already ended ({pb.JobStatus.Name(record.status).removeprefix('JOB_STATUS_')})"
            await stream.send_message(pb.CancelJobResponse(success=False, message=message))
            return
        await stream.send_message(
            pb.CancelJobResponse(success=True, message="cancelling", cancelled_at=timestamp(time.time_ns()))
        )


class LogStreamService(hodei_grpc.LogStreamServiceBase):
    def __init__(self, store: JobStore, fanout: Fanout) -> None:
        self.store = store
        self.fanout = fanout

    async def SubscribeLogs(self, stream: Stream[pb.SubscribeLogsRequest, pb.JobLogEntry]) -> None:
        request = await stream.recv_message()
        assert request is not None
        record = find_job(self.store, request.job_id)
        history_lines = record.line_count
        if not request.include_history:
            after = history_lines  # only what the job writes from now on
        elif request.tail_lines > 0:
            after = max(0, history_lines - request.tail_lines)
        else:
            after = 0
        # Headers at once (a client waits for them before it can tell a silent job from a
        # dead server), with the promise that lets clients dedupe by sequence alone and where
        # the history ends (a client that wants only the history stops there).
        metadata = [EXACT_SEQUENCES_HEADER, (HISTORY_LINES_HEADER, str(history_lines))]
        await stream.send_initial_metadata(metadata=metadata)
        # A page of lines (encoded gRPC messages) goes out as one HTTP/2 write, not a write per
        # line: gRPC lets one DATA frame carry several length-prefixed messages, and grpclib's
        # ``send_message`` costs a socket write and HTTP/2 framing per message (~60 µs).
        writer = StreamWriter(stream)
        async for page in self.fanout.follow(self.store, record.job_id, after, writer.write_now):
            await writer.write(page.data)

    async def GetLogs(self, stream: Stream[pb.GetLogsRequest, pb.GetLogsResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        record = find_job(self.store, request.job_id)
        limit = min(request.limit, PAGE_LINES) if request.limit > 0 else DEFAULT_LOGS_LIMIT
        lines = await self.store.read(record.job_id, max(request.since_sequence, 0), limit)
        last_sequence = self.store.get(record.job_id).line_count  # type: ignore[union-attr]
        has_more = bool(lines) and lines[-1].sequence < last_sequence
        await stream.send_message(pb.GetLogsResponse(entries=[log_entry(line) for line in lines], has_more=has_more))
