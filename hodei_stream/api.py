"""Plain facts of the Hodei API, free of any gRPC library: which job statuses are final,
their short names, and what a job id looks like.  Shared by the grpcio client
(``client.py``) and the streamer, which does not import grpcio."""

from __future__ import annotations

import uuid

from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb

FINAL_STATUSES = frozenset(
    {pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED, pb.JOB_STATUS_TIMEOUT}
)


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is a canonical lowercase UUID, else raise ``ClientError`` (USAGE)."""
    try:
        canonical = str(uuid.UUID(job_id))
    except ValueError:
        canonical = ""
    if canonical != job_id:
        raise ClientError(f"'{job_id}' is not a job id (expected a lowercase UUID)", ExitStatus.USAGE)
    return job_id


def status_name(status: int) -> str:
    """``JOB_STATUS_COMPLETED`` → ``COMPLETED``."""
    return pb.JobStatus.Name(status).removeprefix("JOB_STATUS_")
