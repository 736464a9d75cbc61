"""The embedded server's tunables and what it takes from its environment, in one immutable
object handed down from the daemon."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hodei_stream.state_folder import ENV_TOKEN

# What a job inherits from the server's environment before its own ``environment`` is laid
# over it: enough for a shell and python3 to behave as in a login, nothing the server holds
# (no HODEI_TOKEN, no credentials of the server's own).
INHERITED_ENVIRONMENT = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


@dataclass(frozen=True)
class ServerEnvironment:
    """The server's environment as its jobs see it, read once (``read``) when the server's
    settings are made, at its start: the worker never reads ``os.environ``."""

    # Laid under each job's own ``environment``: the ``INHERITED_ENVIRONMENT`` that is set.
    job_inherited: Mapping[str, str]
    # Where every job starts: the server's home folder.
    job_working_directory: str
    # A job's supervisor runs in the server's environment but for the token: the supervisor
    # needs none, and its job must not find it.
    supervisor: Mapping[str, str]

    @classmethod
    def read(cls, environ: Mapping[str, str] = os.environ) -> ServerEnvironment:
        return cls(
            job_inherited={name: environ[name] for name in INHERITED_ENVIRONMENT if name in environ},
            # (As ``Path.home()`` finds it: $HOME, else the user's entry in the password database.)
            job_working_directory=str(Path(environ["HOME"]) if "HOME" in environ else Path.home()),
            supervisor={name: value for name, value in environ.items() if name != ENV_TOKEN},
        )


@dataclass(frozen=True)
class ServerSettings:
    # A supervisor's ``LogBatcher`` sends its pending lines once it holds ``capacity``
    # of them or the oldest has waited ``flush_interval_s``.  Capacity 1 sends every read at
    # once; whatever one read of the job's output yields always goes out in one frame.
    batch_capacity: int = 1
    batch_flush_interval_s: float = 0.010
    # Cancel and timeout: SIGTERM the job's process group, SIGKILL it after this grace.
    kill_grace_s: float = 3.0
    # After the job's main process exits, how long to keep reading output that a process
    # it left behind might still hold the terminal for (the job ends regardless).
    drain_after_exit_s: float = 0.5
    # How long the SQLite writer lets lines gather before a commit (throughput vs. latency
    # to disk; subscribers never wait for it, they read the in-memory buffer).
    store_commit_interval_s: float = 0.05
    # Committed lines of a running job kept in memory for subscribers that are close behind:
    # at most this many, and at most this many bytes (as received and as encoded for them).
    store_recent_lines: int = 10_000
    store_recent_bytes: int = 1024 * 1024
    # Lines of a job received but not committed yet, at most: beyond this the worker stops
    # reading the job's supervisor until the writer caught up, so a job that writes faster
    # than the disk takes its lines does not fill the server's memory: its supervisor keeps
    # them in its spool (on disk) and sends them, in order, once the server reads again.
    # The same in bytes, whatever the lines' length, per job and for all jobs together (a
    # job's batch that arrives is taken, so a job may be one batch, < 7 MiB, beyond either).
    store_max_backlog_lines: int = 50_000
    store_max_backlog_bytes: int = 4 * 1024 * 1024
    store_max_pending_bytes: int = 16 * 1024 * 1024
    # ``hodei-server stop`` / SIGTERM: how long running jobs get to end after the cancel.
    shutdown_grace_s: float = 5.0
    # A restarted server waits this long for the supervisor of a job it found unfinished to
    # reconnect, when it cannot tell whether that supervisor still runs; then FAILED.
    reattach_timeout_s: float = 10.0
    # A supervisor whose job ended while no server was there keeps trying to hand over the
    # job's lines and outcome this long, then exits and leaves them (spooled) to the next server.
    supervisor_linger_s: float = 3600.0
    # Retention: finished jobs and their logs are forgotten once they ended this long ago, and
    # the oldest finished ones as long as all stored logs take more than the size on disk
    # (compressed, as stored; checked at start and then every ``retention_interval_s``).  A
    # running job is never touched.
    retention_max_age_s: float = 30 * 24 * 3600.0
    retention_max_bytes: int = 2 * 1024**3
    retention_interval_s: float = 3600.0
    # Read here, when the settings are made; a test can hand in its own.
    environment: ServerEnvironment = field(default_factory=ServerEnvironment.read)
