"""A job's outcome as the store records it: the final status of each outcome a supervisor
reports, with a message for users: the job's own error, else what ended it ("cancelled:
<reason>", "exceeded its timeout of N s", "exited with status N")."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hodei_stream.proto import hodei_pb2 as pb

if TYPE_CHECKING:
    from hodei_stream.server.store import JobStore
    from hodei_stream.server.supervisor_protocol import Exited

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


async def record_outcome(store: JobStore, job_id: str, report: Exited, cancel_reason: str | None) -> None:
    """Record the job's outcome (an EXITED report) with a message users can read."""
    message = report.error or await outcome_message(store, job_id, report, cancel_reason)
    store.update(
        job_id,
        status=OUTCOME_STATUS[report.outcome],
        exit_code=report.exit_code,
        error_message=message,
        ended_ns=report.ended_ns or time.time_ns(),
    )


async def outcome_message(store: JobStore, job_id: str, report: Exited, cancel_reason: str | None) -> str:
    """What ended a job whose report carries no error of its own."""
    outcome = report.outcome
    if outcome == "timeout":
        definition = pb.JobDefinition.FromString(await store.definition(job_id))
        return f"exceeded its timeout of {timeout_s(definition) or 0:g} s"
    if outcome == "cancelled":
        # Without a reason here, a previous server cancelled it (the reason is not kept).
        return f"cancelled: {cancel_reason}" if cancel_reason else "cancelled by a previous server"
    if outcome == "failed":
        return f"exited with status {report.exit_code}"
    return ""
