"""The platform's JobExecutionService: queued jobs, run for real by ``worker.Workers``, and
answered as the platform answers (its names, exit codes, missing times, failing ListJobs).

A job goes PENDING (for the provisioning delay) → ASSIGNED (its one execution appears; a
quarter of that delay more) → RUNNING (its process started) → a final state when the worker's
result arrives.  The server's side of the worker's stream (``intake``) takes the worker's
messages in order until the worker goes: each batch's lines go to the log service one by one;
the result sets the job's state and drops its lines (a batch sent after it starts them anew).
A state set once final stays (CancelJob wins).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass

import grpclib.server
from google.protobuf.timestamp_pb2 import Timestamp
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hodei_stream.proto import hodei_grpc
from hodei_stream.proto import hodei_pb2 as pb

from .channel import Channel
from .grpclib_reach import reset_with_cancel
from .logs import LogService
from .worker import OUTGOING_CAPACITY, Outcome, Workers

DEFAULT_TIMEOUT_MS = 300_000
DEFAULT_MEMORY_MB = 512
MIB = 1024 * 1024
DEFAULT_LIST_LIMIT = 10
# The stand-in's log line for a ListJobs answered with no rows (``Platform.listed_nothing``).
LISTED_NOTHING = "platform stand-in: ListJobs answered, no rows"
FINAL = (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED, pb.JOB_STATUS_TIMEOUT)
# How the platform names its states in errors (its own domain's names, not the wire's).
STATE_NAMES = {
    pb.JOB_STATUS_PENDING: "PENDING",
    pb.JOB_STATUS_QUEUED: "SCHEDULED",
    pb.JOB_STATUS_ASSIGNED: "ASSIGNED",
    pb.JOB_STATUS_RUNNING: "RUNNING",
    pb.JOB_STATUS_COMPLETED: "SUCCEEDED",
    pb.JOB_STATUS_FAILED: "FAILED",
    pb.JOB_STATUS_CANCELLED: "CANCELLED",
    pb.JOB_STATUS_TIMEOUT: "TIMEOUT",
}


@dataclass
class Job:
    """One queued job as the platform stores it."""

    job_id: str
    command: list[str]
    environment: dict[str, str]
    timeout_ms: int
    cpu_cores: float
    memory_mb: int
    disk_mb: int
    status: int = pb.JOB_STATUS_PENDING
    execution_id: str = ""  # set once ASSIGNED
    exit_code: str = ""
    error_message: str = ""
    created_ns: int = 0

    def move_to(self, status: int) -> None:
        if self.status not in FINAL:
            self.status = status

    def definition(self) -> pb.JobDefinition:
        """What GetJob answers: the platform's name, no description, no tags."""
        return pb.JobDefinition(
            job_id=pb.JobId(value=self.job_id),
            name=f"Job {self.job_id[:8]}",
            command=self.command[0],
            arguments=self.command[1:],
            environment=self.environment,
            requirements=pb.ResourceRequirements(
                cpu_cores=self.cpu_cores, memory_bytes=self.memory_mb * MIB, disk_bytes=self.disk_mb * MIB
            ),
            timeout=pb.TimeoutConfig(
                execution_timeout={"seconds": self.timeout_ms // 1000, "nanos": self.timeout_ms % 1000 * 1_000_000}
            ),
        )

    def execution(self) -> pb.JobExecution:
        """Its one execution: no worker, no start or end time, state CREATED whatever happens."""
        return pb.JobExecution(
            execution_id=pb.ExecutionId(value=self.execution_id),
            job_id=pb.JobId(value=self.job_id),
            job_status=self.status,
            exit_code=self.exit_code,
            error_message=self.error_message,
        )


def parse_job_id(job_id: pb.JobId | None) -> str:
    """The canonical form of a request's job id, or the platform's INVALID_ARGUMENT."""
    value = job_id.value if job_id is not None else ""
    if not value:
        raise GRPCError(Status.INVALID_ARGUMENT, "job_id is required")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise GRPCError(Status.INVALID_ARGUMENT, "job_id must be a UUID") from None


def invalid_spec(field_name: str, reason: str) -> GRPCError:
    return GRPCError(Status.INVALID_ARGUMENT, f"Invalid job spec field {field_name}: {reason}")


def job_from(definition: pb.JobDefinition, created_ns: int) -> Job:
    """A ``Job`` from a QueueJob definition, validated as the platform does."""
    job_id = parse_job_id(definition.job_id) if definition.job_id.value else str(uuid.uuid4())
    command = [definition.command] if definition.command else []
    command.extend(definition.arguments)
    if not command or not any(command):
        raise invalid_spec("command", "Job command cannot be empty")
    timeout_ms = DEFAULT_TIMEOUT_MS
    if definition.timeout.HasField("execution_timeout"):
        duration = definition.timeout.execution_timeout
        timeout_ms = duration.seconds * 1000 + duration.nanos // 1_000_000
    if timeout_ms == 0:
        raise invalid_spec("timeout_ms", "Job timeout must be greater than 0")
    requirements = definition.requirements
    memory_mb = requirements.memory_bytes // MIB if requirements.memory_bytes > 0 else DEFAULT_MEMORY_MB
    if memory_mb == 0:
        raise invalid_spec("memory_mb", "Memory must be greater than 0")
    return Job(
        job_id=job_id,
        command=command,
        environment=dict(definition.environment),
        timeout_ms=timeout_ms,
        cpu_cores=requirements.cpu_cores if requirements.cpu_cores > 0 else 1.0,
        memory_mb=memory_mb,
        disk_mb=requirements.disk_bytes // MIB if requirements.disk_bytes > 0 else 0,
        created_ns=created_ns,
    )


class JobExecutionServicer(hodei_grpc.JobExecutionServiceBase):
    """QueueJob, GetJob, ListJobs and CancelJob, as the platform answers them."""

    def __init__(self, logs: LogService, workers: Workers, provisioning_delay_s: float) -> None:
        self.logs = logs
        self.workers = workers
        self.provisioning_delay_s = provisioning_delay_s
        self.jobs: dict[str, Job] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def QueueJob(self, stream: grpclib.server.Stream[pb.QueueJobRequest, pb.QueueJobResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        if not request.HasField("job_definition"):
            raise GRPCError(Status.INVALID_ARGUMENT, "job_definition is required")
        queued_at = Timestamp()
        queued_at.GetCurrentTime()
        job = job_from(request.job_definition, queued_at.ToNanoseconds())
        self.jobs[job.job_id] = job  # a known id is replaced; its earlier run goes on
        task = asyncio.create_task(self.run(job))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        await stream.send_message(
            pb.QueueJobResponse(
                success=True, message="Job queued successfully", queued_at=queued_at, job_id=pb.JobId(value=job.job_id)
            )
        )

    async def run(self, job: Job) -> None:
        """Provision a worker, run the job on it, and take in what it sends."""
        await asyncio.sleep(self.provisioning_delay_s)
        job.execution_id = str(uuid.uuid4())
        job.move_to(pb.JOB_STATUS_ASSIGNED)
        await asyncio.sleep(self.provisioning_delay_s / 4)
        from_worker: Channel[pb.LogBatch | Outcome] = Channel(OUTGOING_CAPACITY)
        worker = asyncio.create_task(
            self.workers.run(
                job.job_id,
                job.command,
                job.environment,
                job.timeout_ms // 1000,
                from_worker,
                on_start=lambda: job.move_to(pb.JOB_STATUS_RUNNING),
            )
        )
        await self.intake(job, from_worker)
        await worker

    async def intake(self, job: Job, from_worker: Channel[pb.LogBatch | Outcome]) -> None:
        """The server's side of the worker's stream, one message at a time, until the worker goes."""
        while (message := await from_worker.receive()) is not None:
            if isinstance(message, pb.LogBatch):
                for entry in message.entries:
                    await self.logs.append(entry)
            else:
                self.record(job, message)
                await self.logs.drop(job.job_id)

    def record(self, job: Job, outcome: Outcome) -> None:
        if job.status in FINAL:
            return  # cancelled meanwhile: the result changes nothing
        if outcome.timed_out:
            job.exit_code, job.error_message, job.status = "0", outcome.error, pb.JOB_STATUS_TIMEOUT
        elif outcome.exit_code == 0:
            job.exit_code, job.status = "0", pb.JOB_STATUS_COMPLETED
        else:  # the real exit code is lost
            job.error_message, job.status = outcome.error or "Worker reported failure", pb.JOB_STATUS_FAILED

    def find(self, job_id: pb.JobId | None) -> Job:
        job = self.jobs.get(parse_job_id(job_id))
        if job is None:
            raise GRPCError(Status.NOT_FOUND, "Job not found")
        return job

    async def GetJob(self, stream: grpclib.server.Stream[pb.GetJobRequest, pb.GetJobResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        job = self.find(request.job_id if request.HasField("job_id") else None)
        executions = [job.execution()] if job.execution_id else []
        await stream.send_message(pb.GetJobResponse(job=job.definition(), status=job.status, executions=executions))

    async def ListJobs(self, stream: grpclib.server.Stream[pb.ListJobsRequest, pb.ListJobsResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        limit = request.limit if request.limit > 0 else DEFAULT_LIST_LIMIT
        offset = max(request.offset, 0)
        newest_first = sorted(self.jobs.values(), key=lambda job: job.created_ns, reverse=True)
        if newest_first[offset : offset + limit]:
            await reset_with_cancel(stream)  # the platform fails every page that has rows
            return
        await stream.send_message(pb.ListJobsResponse(jobs=[], total_count=len(self.jobs)))
        # Said in the log, so that a test can wait for a watcher's round that listed nothing.
        print(LISTED_NOTHING, file=sys.stderr)

    async def CancelJob(self, stream: grpclib.server.Stream[pb.CancelJobRequest, pb.CancelJobResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        job = self.find(request.job_id if request.HasField("job_id") else None)
        if job.status in FINAL:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"Invalid job state transition from {STATE_NAMES[job.status]} to CANCELLED for job {job.job_id}",
            )
        job.move_to(pb.JOB_STATUS_CANCELLED)  # nothing reaches the worker: the job runs on
        response = pb.CancelJobResponse(success=True, message="Job cancellation requested")
        response.cancelled_at.GetCurrentTime()
        await stream.send_message(response)
