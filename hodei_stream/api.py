"""Plain facts of the Hodei API, free of any gRPC library: which job statuses are final,
their short names, a job's last execution and its duration, what a job id looks like, and the
limits both the server and the command lines know.  Shared by the server, the grpcio client
(``client.py``) and the streamer, which does not import grpcio."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol, TypeVar

from hodei_stream.exit_codes import ClientError, ExitStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hodei_stream.proto import hodei_pb2 as pb

# hodei.JobStatus by number, without the generated code (its import costs stream-logs ~45 ms
# of start-up); tests/unit/test_messages.py checks them against it.
STATUS_NAMES = ("PENDING", "QUEUED", "ASSIGNED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")
JOB_STATUS_COMPLETED = 4
FINAL_STATUSES = frozenset({JOB_STATUS_COMPLETED, 5, 6, 7})  # COMPLETED, FAILED, CANCELLED, TIMEOUT
# The key under which our server puts, in an execution's ``metadata`` (the API's map for such
# facts), when the job was queued: RFC 3339 in UTC.  GetJob has no field for it; the
# platform leaves the map empty.
QUEUED_AT_KEY = "queued_at"
# The most jobs one ListJobs answers: a larger limit is cut to it (the embedded server's cap).
MAX_LIST_LIMIT = 1000
# The longest of a job's timeouts the server takes: longer is more likely a unit mistake than
# a wish, and the supervisor waits with poll(2), whose timeout is at most 2**31 - 1 ms (24.8 days).
MAX_JOB_TIMEOUT_DAYS = 24
MAX_JOB_TIMEOUT_S = MAX_JOB_TIMEOUT_DAYS * 24 * 3600
JOB_ID_CHARS = 36
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


Execution = TypeVar("Execution", covariant=True)


class WithExecutions(Protocol[Execution]):
    """A job as GetJob answers it: a generated ``GetJobResponse`` or stream-logs' ``messages.Job``."""

    @property
    def executions(self) -> Sequence[Execution]: ...


def last_execution(job: WithExecutions[Execution]) -> Execution | None:
    """The job's last execution, the one its status, exit code and times are of; None while
    it has none (not started yet)."""
    return job.executions[-1] if job.executions else None


def duration_s(job: pb.GetJobResponse) -> float | None:
    """How long the job's last execution ran, in seconds; None until it has ended (a
    generated ``GetJobResponse``; stream-logs reads ``messages.Execution.duration_s``)."""
    execution = last_execution(job)
    if execution is None or not (execution.HasField("start_time") and execution.HasField("end_time")):
        return None
    return (execution.end_time.ToNanoseconds() - execution.start_time.ToNanoseconds()) / 1e9


def canonical_job_id(text: str) -> str | None:
    """The one rule for a job id, the server's and every client's: a UUID in the 36-character
    hyphenated form, in any case; its canonical (lowercase) form, else None.  Not ``{...}``,
    ``urn:uuid:`` or 32 bare hex digits, which ``uuid.UUID`` would also take."""
    if len(text) != JOB_ID_CHARS:  # (before any work on what may be megabytes)
        return None
    canonical = text.lower()
    # The regular expression, not uuid.UUID: the same test, without importing uuid (start-up).
    return canonical if _JOB_ID.fullmatch(canonical) else None


def check_job_id(job_id: str) -> str:
    """The canonical form of a job id given on a command line, else ``ClientError`` (USAGE)."""
    canonical = canonical_job_id(job_id)
    if canonical is None:
        shown = job_id if len(job_id) <= 40 else job_id[:40] + "…"
        raise ClientError(f"'{shown}' is not a job id (expected a UUID)", ExitStatus.USAGE)
    return canonical


def status_name(status: int) -> str:
    """``JOB_STATUS_COMPLETED`` (4) → ``COMPLETED``; a number the proto does not name → ``STATUS_9``."""
    return STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else f"STATUS_{status}"
