"""A job's outcome as the store records it: the final status of each outcome a supervisor
reports, and the timeout a message names."""

from __future__ import annotations

from hodei_stream.proto import hodei_pb2 as pb

OUTCOME_STATUS = {
    "completed": pb.JOB_STATUS_COMPLETED,
    "failed": pb.JOB_STATUS_FAILED,
    "timeout": pb.JOB_STATUS_TIMEOUT,
    "cancelled": pb.JOB_STATUS_CANCELLED,
}


def timeout_s(definition: pb.JobDefinition) -> float | None:
    """The job's execution timeout in seconds; None when it has none."""
    if not definition.timeout.HasField("execution_timeout"):
        return None
    return definition.timeout.execution_timeout.ToNanoseconds() / 1e9 or None
