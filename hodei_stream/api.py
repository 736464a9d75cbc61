"""Plain facts of the Hodei API, free of any gRPC library: which job statuses are final,
their short names, a job's duration, and what a job id looks like.  Shared by the server, the
grpcio client (``client.py``) and the streamer, which does not import grpcio."""

from __future__ import annotations

import uuid

from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb

FINAL_STATUSES = frozenset(
    {pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED, pb.JOB_STATUS_TIMEOUT}
)


def duration_s(job: pb.GetJobResponse) -> float | None:
    """How long the job's last execution ran, in seconds; None until it has ended."""
    execution = job.executions[-1] if job.executions else None
    if execution is None or not (execution.HasField("start_time") and execution.HasField("end_time")):
        return None
    return (execution.end_time.ToNanoseconds() - execution.start_time.ToNanoseconds()) / 1e9


def check_job_id(job_id: str) -> str:
    """The canonical form (lowercase, hyphenated) of a job id given as a UUID in any case,
    else ``ClientError`` (USAGE).  Only the 36-character hyphenated form is a job id (not
    ``{...}``, ``urn:uuid:`` or 32 bare hex digits, which ``uuid.UUID`` would also take)."""
    canonical = job_id.lower()
    try:
        valid = len(job_id) == 36 and str(uuid.UUID(canonical)) == canonical
    except ValueError:
        valid = False
    if not valid:
        shown = job_id if len(job_id) <= 40 else job_id[:40] + "…"
        raise ClientError(f"'{shown}' is not a job id (expected a UUID)", ExitStatus.USAGE)
    return canonical


def status_name(status: int) -> str:
    """``JOB_STATUS_COMPLETED`` → ``COMPLETED``."""
    return pb.JobStatus.Name(status).removeprefix("JOB_STATUS_")
