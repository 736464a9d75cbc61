"""Exit statuses of every hodei-stream command, in one place, and how errors map to them.

The README's exit-status table is this enum; change both together.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0  # the job (every job) completed
    JOB_FAILED = 1  # a job failed, timed out or was cancelled
    USAGE = 2  # bad command line or malformed input (e.g. a job id that is not a UUID)
    NOT_FOUND = 3  # no such job on the server
    UNREACHABLE = 4  # the server cannot be reached, is not a Hodei server, or ended the call
    STILL_RUNNING = 5  # --no-follow: the history was shown, but the job has not ended yet
    INTERRUPTED = 130  # the user's Ctrl+C / SIGTERM: we stopped watching; the job goes on


# Several jobs end with the worst of their statuses: the least good outcome first.  A job
# still running is better news than one that failed, though its number is higher.
_WORST_FIRST = (
    ExitStatus.INTERRUPTED,
    ExitStatus.UNREACHABLE,
    ExitStatus.NOT_FOUND,
    ExitStatus.USAGE,
    ExitStatus.JOB_FAILED,
    ExitStatus.STILL_RUNNING,
    ExitStatus.OK,
)


def worst(statuses: list[int]) -> int:
    """The exit status of several jobs: the worst of theirs (OK for none)."""
    return min(statuses, key=lambda status: _WORST_FIRST.index(ExitStatus(status)), default=ExitStatus.OK)


# gRPC status code names (``grpc.StatusCode.X.name`` / ``grpclib.Status.X.name``) → exit status.
# Keyed by name so that this table imports neither gRPC library.
_BY_GRPC_CODE = {
    "NOT_FOUND": ExitStatus.NOT_FOUND,
    "INVALID_ARGUMENT": ExitStatus.USAGE,
    "UNAVAILABLE": ExitStatus.UNREACHABLE,
    "UNIMPLEMENTED": ExitStatus.UNREACHABLE,  # something answers, but not a Hodei server
    "UNAUTHENTICATED": ExitStatus.UNREACHABLE,
    "PERMISSION_DENIED": ExitStatus.UNREACHABLE,
    "DEADLINE_EXCEEDED": ExitStatus.UNREACHABLE,
    # Our own Ctrl+C never reaches this table (it is caught as such); a CANCELLED answer
    # means the server ended the call (RST_STREAM CANCEL, e.g. while it shuts down).
    "CANCELLED": ExitStatus.UNREACHABLE,
}


def for_grpc_code(code_name: str) -> ExitStatus:
    """The exit status for a failed call with this gRPC status code name."""
    return _BY_GRPC_CODE.get(code_name, ExitStatus.UNREACHABLE)


class ClientError(Exception):
    """A failed command or call, as the user should read it: one line and an exit status."""

    def __init__(self, message: str, status: ExitStatus) -> None:
        super().__init__(message)
        self.status = status
