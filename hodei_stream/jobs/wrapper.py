"""The shared base of every job script: pick the server, submit, watch the log, sum up.

A job script (``job_scripts/*.sh`` → ``python -m hodei_stream.jobs.<script>``) is a
``JobScript`` subclass that says which job to run (``job_request``) and, if it likes, what to
add to the summary (``summary_rows``).  This module does the rest the same way for all:

- the server: ``--server URL``, else ``HODEI_GRPC_URL``, else the embedded server, started
  on demand;
- the job: its payload wrapped by ``hodei_stream.jobs.payload`` and sent with QueueJob;
- the log: the streamer (``hodei_stream.stream.cli``) in the foreground (``& RETCODE(FG=True)``:
  it owns the terminal until the job ends), or in the background as the original scripts
  ran it, ``stdbuf -o0 -e0 stream-logs ID 2>&1 | cat &``, while this process polls GetJob
  and reports the job's status changes;
- the end: a summary block on stderr and an exit status (``ExitStatus``): 0 only when the
  job completed.  Errors are one line on stderr; Ctrl+C stops watching, not the job.

Scripts that run several jobs (pipelines) override ``run_jobs`` and call ``run_job`` per stage.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from plumbum import cli, local
from plumbum.commands.base import ERROUT
from plumbum.commands.modifiers import BG, RETCODE, Future

from hodei_stream.client import FINAL_STATUSES, ClientError, HodeiClient, status_name
from hodei_stream.exit_codes import ExitStatus
from hodei_stream.jobs.payload import PayloadError, job_spec
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.servers import Server, ServerAddressError, ensure_running, resolve

STREAMER_MODULE = "hodei_stream.stream.cli"
STATUS_POLL_S = 0.2  # how often background mode asks GetJob; a status change shows within this
# After the job's final status, how long the background streamer may take to print what is left.
STREAM_DRAIN_TIMEOUT_S = 30.0
# After Ctrl+C, how long the streamer gets to say goodbye before it is stopped.
INTERRUPT_GRACE_S = 3.0
WAITING_STATUSES = frozenset({pb.JOB_STATUS_PENDING, pb.JOB_STATUS_QUEUED})
RULE = "─" * 64


@dataclass(frozen=True)
class JobRequest:
    """One job a script wants run: a payload file and how to call it."""

    name: str
    payload: Path  # a file under hodei_stream/jobs/payloads (``payload_file``) or anywhere
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    timeout_s: float | None = None
    tags: Sequence[str] = ()


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended, as GetJob reported it."""

    job_id: str
    name: str
    status: str  # COMPLETED, FAILED, CANCELLED, TIMEOUT (or RUNNING if it never ended)
    exit_code: str  # as the platform reports it: a string, empty when there is none
    duration_s: float
    error_message: str = ""

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.OK if self.status == "COMPLETED" else ExitStatus.JOB_FAILED


class UsageError(Exception):
    """A command line plumbum's switches cannot reject alone (e.g. "one of --a|--b")."""


class StreamerFailed(Exception):
    """The streamer ended for a reason of its own (bad id, server gone), already reported."""

    def __init__(self, status: int) -> None:
        super().__init__(f"stream-logs exited with status {status}")
        self.status = status


class JobScript(cli.Application):
    """Base class: subclasses set ``PROGNAME``, a docstring, switches and ``job_request``."""

    FOREGROUND_BY_DEFAULT: ClassVar[bool] = True

    server_url = cli.SwitchAttr(
        "--server",
        str,
        argname="URL",
        help="Hodei server, host:port or unix:/path (default: $HODEI_GRPC_URL, else the embedded server)",
    )
    foreground = cli.Flag(
        "--foreground", excludes=["--background"], help="stream the job's log in the foreground until it ends"
    )
    background = cli.Flag(
        "--background",
        help="stream the log in the background (stdbuf -o0 -e0 stream-logs ID 2>&1 | cat &) "
        "while watching the job's status",
    )

    # The job being watched, for the Ctrl+C message.
    watched_job_id: str | None = None

    # ----- what subclasses provide ------------------------------------------------------

    def job_request(self) -> JobRequest:
        """The job to run (single-job scripts); pipelines override ``run_jobs`` instead."""
        raise NotImplementedError

    def check_usage(self) -> None:
        """Raise ``UsageError`` for a command line the switches alone accept but that makes no sense."""

    def summary_rows(self, outcome: JobOutcome) -> list[tuple[str, str]]:
        """Extra ``(label, value)`` lines for the summary block, e.g. where the results are."""
        return []

    # ----- the flow shared by every script ----------------------------------------------

    def main(self) -> int:
        try:
            self.check_usage()
            server = resolve(self.server_url)
        except (UsageError, ServerAddressError) as error:
            return self.fail(f"{error} (try --help)", ExitStatus.USAGE)
        try:
            ensure_running(server)
            with HodeiClient(server) as client:
                return int(self.run_jobs(client))
        except ClientError as error:
            return self.fail(str(error), error.status)
        except ServerAddressError as error:  # the embedded server could not be started
            return self.fail(str(error), ExitStatus.UNREACHABLE)
        except (PayloadError, OSError) as error:  # the job could not be built
            return self.fail(f"cannot build the job: {error}", ExitStatus.JOB_FAILED)
        except StreamerFailed as error:
            return error.status  # the streamer already said why, in one line
        except KeyboardInterrupt:
            return self.interrupted()

    def run_jobs(self, client: HodeiClient) -> ExitStatus:
        outcome = self.run_job(client, self.job_request())
        self.print_summary(outcome)
        return outcome.exit_status

    def run_job(self, client: HodeiClient, request: JobRequest) -> JobOutcome:
        """Submit ``request``, stream its log in the chosen mode, return how it ended."""
        spec = job_spec(request.payload, request.args, request.env)
        submitted = time.monotonic()
        job_id = client.queue_job(
            request.name,
            spec.command,
            spec.arguments,
            description=request.description,
            timeout_s=request.timeout_s,
            tags=request.tags,
        )
        self.watched_job_id = job_id
        self.say(f"🚀 submitted job '{request.name}' as {job_id} to {client.server}")
        if self.streams_in_foreground:
            status = self.stream_foreground(client.server, job_id)
            if status == ExitStatus.INTERRUPTED:  # SIGINT reached the streamer but not us
                raise KeyboardInterrupt
            if status not in (ExitStatus.OK, ExitStatus.JOB_FAILED):
                raise StreamerFailed(status)
            job = client.wait_final(job_id)
        else:
            job = self.stream_background(client, job_id)
        self.watched_job_id = None
        return outcome_of(job, job_id, request.name, fallback_duration_s=time.monotonic() - submitted)

    @property
    def streams_in_foreground(self) -> bool:
        return self.foreground or (self.FOREGROUND_BY_DEFAULT and not self.background)

    def stream_foreground(self, server: Server, job_id: str) -> int:
        """Run the streamer on this terminal until the job's log ends; its exit status."""
        return int(local[sys.executable][streamer_args(server, job_id)] & RETCODE(FG=True))

    def stream_background(self, client: HodeiClient, job_id: str) -> pb.GetJobResponse:
        """Stream in the background while polling GetJob; the job's final state.

        ``| cat`` reads the streamer's only pipe, and cat writes to this process's stdout: no
        output is captured, so nothing can fill up and block the streamer.
        """
        unbuffered = local["stdbuf"]["-o0", "-e0", sys.executable][streamer_args(client.server, job_id)]
        pipeline = (unbuffered >= ERROUT) | local["cat"]
        future = pipeline & BG(retcode=None, stdin=None, stdout=None, stderr=None)
        try:
            job = self.watch_status(client, job_id)
            if not wait_for(future, STREAM_DRAIN_TIMEOUT_S):
                self.say(f"⚠️ the log stream of {job_id} did not end {STREAM_DRAIN_TIMEOUT_S:.0f}s after the job did; stopped it")
            return job
        finally:
            if not wait_for(future, INTERRUPT_GRACE_S):
                stop(future)

    def watch_status(self, client: HodeiClient, job_id: str) -> pb.GetJobResponse:
        """Poll GetJob until the job is final, saying each status it passes through."""
        seen: int | None = None
        while True:
            job = client.get_job(job_id)
            if job.status != seen:
                seen = job.status
                if seen in WAITING_STATUSES:
                    self.say(f"[WAIT] job {job_id} is {status_name(seen)}, waiting for a worker")
                else:
                    self.say(f"[STATUS] job {job_id} is {status_name(seen)}")
            if seen in FINAL_STATUSES:
                return job
            time.sleep(STATUS_POLL_S)

    # ----- output -----------------------------------------------------------------------

    def print_summary(self, outcome: JobOutcome) -> None:
        mark = "✅" if outcome.exit_status == ExitStatus.OK else "❌"
        exit_code = f" (exit code {outcome.exit_code})" if outcome.exit_code else ""
        rows = [
            ("Job ID", outcome.job_id),
            ("Name", outcome.name),
            ("Status", f"{mark} {outcome.status}{exit_code}"),
            ("Duration", f"{outcome.duration_s:.2f}s"),
        ]
        if outcome.error_message:
            rows.append(("Error", outcome.error_message))
        rows += self.summary_rows(outcome)
        width = max(len(label) for label, _ in rows) + 1
        lines = [RULE, "📋 Summary", *(f"   {label + ':':<{width}} {value}" for label, value in rows), RULE]
        self.say("\n".join(lines))

    def interrupted(self) -> int:
        if self.watched_job_id:
            self.say(
                f"\n⏹ stopped watching; job {self.watched_job_id} goes on on the server."
                f" Resume watching with: stream-logs {self.watched_job_id}"
            )
        else:
            self.say("\n⏹ interrupted")
        return ExitStatus.INTERRUPTED

    def fail(self, message: str, status: ExitStatus) -> int:
        self.say(f"{self.PROGNAME}: {message}")
        return status

    @staticmethod
    def say(text: str) -> None:
        # stderr, like the streamer's banners, so that stdout carries only the job's log lines.
        print(text, file=sys.stderr, flush=True)


def streamer_args(server: Server, job_id: str) -> tuple[str, ...]:
    """This interpreter's arguments to stream one job: the streamer needs nothing on PATH."""
    return ("-m", STREAMER_MODULE, "--server", server.target, job_id)


def outcome_of(job: pb.GetJobResponse, job_id: str, name: str, fallback_duration_s: float) -> JobOutcome:
    """A ``JobOutcome`` from GetJob: the last execution's times and exit code when it has them."""
    execution = job.executions[-1] if job.executions else None
    duration_s = fallback_duration_s
    if execution is not None and execution.HasField("start_time") and execution.HasField("end_time"):
        duration_s = (execution.end_time.ToNanoseconds() - execution.start_time.ToNanoseconds()) / 1e9
    return JobOutcome(
        job_id=job_id,
        name=job.job.name or name,
        status=status_name(job.status),
        exit_code=execution.exit_code if execution else "",
        duration_s=duration_s,
        error_message=execution.error_message if execution else "",
    )


def wait_for(future: Future, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for a background pipeline; True when it has ended."""
    try:
        future.proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return True


def stop(future: Future) -> None:
    """Stop every process of a background pipeline (``a | b``: ``proc.srcproc`` is ``a``)."""
    processes = [getattr(future.proc, "srcproc", None), future.proc]
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
    for process in processes:
        if process is not None:
            process.wait()
