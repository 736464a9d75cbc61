"""What the server accepts from a client, checked before any work is done with it.

Every request field a client controls has a bound (the README's "Limits and bad input"
table lists them), and a refusal quotes at most a short prefix of what it got: an error
message that echoes a client's megabytes costs the server time on every hop (the grpc-message
header is Huffman-coded by hpack, quadratically in its length) and floods the client's terminal.

A job definition is checked whole before a supervisor runs it: what ``execve`` would refuse
(a NUL byte, an environment name with ``=``) or a timeout the supervisor cannot represent is
INVALID_ARGUMENT naming the field, never a supervisor that dies with a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.duration_pb2 import Duration
from grpclib import GRPCError, Status

from hodei_stream.api import MAX_JOB_TIMEOUT_DAYS, MAX_JOB_TIMEOUT_S, canonical_job_id
from hodei_stream.proto import hodei_pb2 as pb

MAX_NAME_CHARS = 1024
MAX_DESCRIPTION_CHARS = 64 * 1024
# Linux's PATH_MAX, and MAX_ARG_STRLEN (128 KiB with its terminating NUL) for one argument or
# one NAME=value of the environment.
MAX_COMMAND_BYTES = 4096
MAX_EXEC_STRING_BYTES = 128 * 1024 - 1
# The command, its arguments and its environment together (execve's own limit is 2 MiB by
# default); this also bounds what the server keeps in memory per job.
MAX_EXEC_BYTES = 1024 * 1024
MAX_TAGS = 100
# ListJobs' search_term and CancelJob's reason.
MAX_SEARCH_CHARS = 1024
MAX_REASON_CHARS = 1024
MAX_TAG_CHARS = 256
# What a refusal quotes of a client's value.
QUOTED_PREFIX_CHARS = 64


def quoted(value: str) -> str:
    """``value`` in quotes, cut to a short prefix ("…" marks the cut), control characters
    escaped so that the message stays one line."""
    shown = value[:QUOTED_PREFIX_CHARS]
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in shown)
    return f"'{shown}{'…' if len(value) > QUOTED_PREFIX_CHARS else ''}'"


def invalid(message: str) -> GRPCError:
    return GRPCError(Status.INVALID_ARGUMENT, message)


def parse_job_id(value: str) -> str:
    """The canonical lowercase form of a job id (``api.canonical_job_id``), or INVALID_ARGUMENT."""
    canonical = canonical_job_id(value)
    if canonical is None:
        raise invalid(f"{quoted(value)} is not a job id (expected a UUID)")
    return canonical


def check_definition(definition: pb.JobDefinition) -> None:
    """Refuse (INVALID_ARGUMENT, one line naming the field) a definition that a supervisor
    could not run as given or that exceeds a limit."""
    if not definition.command:
        raise invalid("the job has no command")
    check_text("name", definition.name, MAX_NAME_CHARS)
    check_text("description", definition.description, MAX_DESCRIPTION_CHARS)
    if len(definition.tags) > MAX_TAGS:
        raise invalid(f"tags: {len(definition.tags)} tags, at most {MAX_TAGS}")
    for tag in definition.tags:
        check_text("a tag", tag, MAX_TAG_CHARS)
    total = check_exec_string("command", definition.command, MAX_COMMAND_BYTES)
    for index, argument in enumerate(definition.arguments):
        total += check_exec_string(f"arguments[{index}]", argument, MAX_EXEC_STRING_BYTES)
    total += check_environment(definition.environment.items())
    if total > MAX_EXEC_BYTES:
        raise invalid(
            f"the command, arguments and environment are {total:,} bytes together, at most {MAX_EXEC_BYTES:,}"
        )
    for field in ("execution_timeout", "heartbeat_timeout", "cleanup_timeout"):
        if definition.timeout.HasField(field):
            check_timeout(f"timeout.{field}", getattr(definition.timeout, field))


def check_text(field: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise invalid(f"{field}: {len(value):,} characters, at most {limit:,}")


def check_exec_string(field: str, value: str, limit: int) -> int:
    """Check one string that goes to ``execve``; its size in bytes there (with its NUL)."""
    size = len(value.encode())
    if size > limit:
        raise invalid(f"{field}: {size:,} bytes, at most {limit:,}")
    if "\0" in value:
        raise invalid(f"{field} contains a NUL byte")
    return size + 1


def check_environment(variables: Iterable[tuple[str, str]]) -> int:
    """Check the environment's names and values; their size for ``execve`` (NAME=value)."""
    total = 0
    for name, value in variables:
        if not name:
            raise invalid("environment: an empty variable name")
        if "=" in name or "\0" in name:
            raise invalid(f"environment: the name {quoted(name)} contains {'=' if '=' in name else 'a NUL byte'}")
        total += check_exec_string(f"environment[{quoted(name)}]", f"{name}={value}", MAX_EXEC_STRING_BYTES)
    return total


def check_timeout(field: str, duration: Duration) -> None:
    """A valid ``google.protobuf.Duration`` (nanos within ±999,999,999 and of the seconds'
    sign), not negative, at most ``MAX_JOB_TIMEOUT_S``; zero means no timeout."""
    seconds, nanos = duration.seconds, duration.nanos
    if not -999_999_999 <= nanos <= 999_999_999 or (seconds > 0 > nanos) or (seconds < 0 < nanos):
        raise invalid(f"{field}: not a valid Duration (seconds {seconds}, nanos {nanos})")
    if seconds < 0 or nanos < 0:
        raise invalid(f"{field}: negative ({seconds + nanos / 1e9:g}s)")
    if seconds + nanos / 1e9 > MAX_JOB_TIMEOUT_S:
        raise invalid(f"{field}: {seconds:,}s, at most {MAX_JOB_TIMEOUT_S:,}s ({MAX_JOB_TIMEOUT_DAYS} days)")
