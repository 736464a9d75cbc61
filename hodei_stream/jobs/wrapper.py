"""The shared base of every job script: pick the server, submit, watch the log, sum up.

A job script (``job_scripts/*.sh`` → ``python -m hodei_stream.jobs.<script>``) is a
``JobScript`` subclass that says which job to run (``job_request``) and, if it likes, what to
add to the summary (``summary_rows``).  This module does the rest the same way for all:

- the server: ``--server URL``, else ``HODEI_GRPC_URL``, else the embedded server, started
  on demand;
- the job: its payload wrapped by ``hodei_stream.jobs.payload`` and sent with QueueJob;
- the log: the streamer (``hodei_stream.stream.cli``) in the foreground (it writes straight
  to this terminal until the job ends), or in the background as the original scripts ran
  it, ``stdbuf -o0 -e0 stream-logs ID 2>&1 | cat &``, while this process polls GetJob and
  reports the job's status changes;
- the end: a summary block on stderr and an exit status (``ExitStatus``): 0 only when the
  job completed.  Errors are one line on stderr.
- what the job said: the streamer also writes the job's lines to a file of this run
  (``-o``), because a server may keep none once the job has ended (the Hodei platform drops
  them): a script that explains a failure reads GetLogs, else that file.
- the job's state and times come from GetJob alone; where it dates nothing (the platform
  sets no start or end time), the transitions this process saw, else "unknown".
- in a CI (``--ci``, ``HODEI_CI``, else GitHub Actions or GitLab CI detected): everything on
  stdout, in order; a collapsible group around each job's log (the streamer keeps the job's
  lines from issuing CI commands, this process makes the groups); an error annotation for a
  job that failed; the summary also in the step summary (``GITHUB_STEP_SUMMARY``, as
  Markdown, wherever it is set); ``--junit FILE`` writes a JUnit report, a testcase per job.
- Ctrl+C: the streamer is started with SIGINT ignored, so that only this process decides
  what Ctrl+C means: it ends the streamer with SIGTERM, and the streamer's own goodbye
  (the job goes on, and how to watch it again) is the one message the user reads; or, with
  ``--cancel-on-interrupt``, it cancels the job and lets the streamer show how it ended.
  SIGTERM to this process means the same.

Scripts that run several jobs (pipelines, ``hodei_stream.jobs.pipeline``) override
``run_jobs`` and call ``run_job`` per stage, or once for a job whose steps are the stages;
``trace-job`` calls ``follow`` on a job it did not submit.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

from plumbum import cli, local
from plumbum.cli import application
from plumbum.cli.switches import SwitchError
from plumbum.commands.base import ERROUT, BaseCommand
from plumbum.commands.modifiers import BG, Future

from hodei_stream.api import FINAL_STATUSES, duration_s, last_execution, status_name
from hodei_stream.ci.commands import CI_CHOICES, NO_CI
from hodei_stream.ci.junit import ReportCase, write_junit
from hodei_stream.ci.output import LAST_LINES, CiChoiceError, CiOutput, chosen_ci, failure_text
from hodei_stream.ci.summary import append_step_summary, markdown_summary
from hodei_stream.client import HodeiClient
from hodei_stream.command_line import installed_version, refuse_usage, watch_again_hint
from hodei_stream.endpoint import (
    Server,
    ServerAddressError,
    ensure_running,
    resolve,
    surviving_restart,
)
from hodei_stream.environment import Environment
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.jobs.payload import PayloadError, job_spec
from hodei_stream.jobs.usage import usage_message
from hodei_stream.own_python import module_command
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.stream.format import UNKNOWN_EXIT_CODE

STREAMER_MODULE = "hodei_stream.stream.cli"
STATUS_POLL_S = 0.2  # how often background mode asks GetJob by default; a change shows within this
# After the job's final status, how long the background streamer may take to print what is left.
STREAM_DRAIN_TIMEOUT_S = 30.0
# After Ctrl+C, how long the streamer gets to say goodbye (or to show the cancelled job's end).
INTERRUPT_GRACE_S = 5.0
FINAL_STATUS_NAMES = frozenset(map(status_name, FINAL_STATUSES))
WAITING_STATUSES = frozenset({pb.JOB_STATUS_PENDING, pb.JOB_STATUS_QUEUED})
RULE = "─" * 64
# plumbum's answers to --help, --help-all, -v and --completion: not usage errors.
META_SWITCHES = tuple(
    getattr(application, name)
    for name in ("ShowHelp", "ShowHelpAll", "ShowVersion", "ShowCompletion")
    if hasattr(application, name)
)


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
    bundle: Sequence[Path] = ()  # files and folders the job needs, at $HODEI_BUNDLE_DIR on the worker


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended, as GetJob reported it."""

    job_id: str
    name: str
    status: str  # COMPLETED, FAILED, CANCELLED, TIMEOUT (or RUNNING if it never ended)
    exit_code: str  # as the platform reports it: a string, empty when there is none
    duration_s: float
    error_message: str = ""
    streamed: Path | None = None  # the lines the streamer showed (``-o``), when it ran

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.OK if self.status == "COMPLETED" else ExitStatus.JOB_FAILED


class UsageError(Exception):
    """A command line plumbum's switches cannot reject alone (e.g. "one of --a|--b")."""


class WatchInterrupted(KeyboardInterrupt):
    """Ctrl+C while following a job, already answered: the streamer said goodbye, or the job was cancelled."""


class StreamerFailed(Exception):
    """The streamer ended for a reason of its own (bad id, server gone), already reported."""

    def __init__(self, status: int) -> None:
        super().__init__(f"stream-logs exited with status {status}")
        self.status = status


class JobScript(cli.Application):
    """Base class: subclasses set ``PROGNAME``, a docstring, switches and ``job_request``."""

    FOREGROUND_BY_DEFAULT: ClassVar[bool] = True
    # Whether the streamer copies the job's lines to a file of this run (for ``explain_failure``
    # and the stage tables); a script that reads no line back copies none.
    KEEPS_STREAMED_LINES: ClassVar[bool] = True
    VERSION = installed_version() or "(not installed)"  # what -v/--version prints after the script's name

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
    cancel_on_interrupt = cli.Flag(
        "--cancel-on-interrupt", help="on Ctrl+C, cancel the job (by default Ctrl+C stops watching and the job goes on)"
    )
    ci_choice = cli.SwitchAttr(
        "--ci",
        cli.Set(*CI_CHOICES),
        argname="CI",
        help="CI output: a group per job or stage, annotations, job lines kept from issuing CI commands "
        "(default: $HODEI_CI, else auto: GitHub Actions or GitLab CI when detected)",
    )
    junit = cli.SwitchAttr("--junit", str, argname="FILE", help="write a JUnit XML report: a testcase per job or stage")
    poll_interval_s = STATUS_POLL_S  # a switch of its own in trace-job.sh
    ci = CiOutput(NO_CI)  # set by ``main`` from --ci, HODEI_CI and the CI's variables

    # The job being watched (its name, since when), for Ctrl+C's message and report.
    watched_job_id: str | None = None
    watched_name = ""
    watched_since = 0.0
    server: Server  # set by ``main`` once the command line named it

    def __init__(self, executable: str | None = None, environment: Environment | None = None) -> None:
        """plumbum makes the script with its ``executable``; its environment is read here,
        once (or given)."""
        super().__init__(executable)
        self.environment = Environment.of_process() if environment is None else environment

    # ----- what subclasses provide ------------------------------------------------------

    def job_request(self) -> JobRequest:
        """The job to run (single-job scripts); pipelines override ``run_jobs`` instead."""
        raise NotImplementedError

    def check_usage(self) -> None:
        """Raise ``UsageError`` for a command line the switches alone accept but that makes no sense."""

    def summary_rows(self, outcome: JobOutcome) -> list[tuple[str, str]]:
        """Extra ``(label, value)`` lines for the summary block, e.g. where the results are."""
        return []

    def explain_failure(self, client: HodeiClient, outcome: JobOutcome) -> str | None:
        """One line that says why a failed job failed and what to do, when the script can tell."""
        return None

    def status_changed(self, job_id: str, job: pb.GetJobResponse) -> None:
        """Background mode saw the job take a new status: say so (trace-job also keeps the time)."""
        if job.status in WAITING_STATUSES:
            self.say(f"[WAIT] job {job_id} is {status_name(job.status)}, waiting for a worker")
        else:
            self.say(f"[STATUS] job {job_id} is {status_name(job.status)}")

    # ----- the command line: plumbum parses it, usage errors are ours -------------------

    def _parse_args(self, argv: list[str]) -> Any:
        return self.refusing_bad_usage(super()._parse_args, argv)

    def _validate_args(self, swfuncs: Any, tailargs: Any) -> Any:
        return self.refusing_bad_usage(super()._validate_args, swfuncs, tailargs)

    def refusing_bad_usage(self, parse: Callable[..., Any], *args: Any) -> Any:
        """Run a step of plumbum's parsing; a command line it refuses ends here with one line, exit 2.

        plumbum would print its own wording and then the whole help; these are the two steps
        of its ``run`` that refuse command lines (the parse, and the requires/excludes and
        positional checks), so overriding them changes the message and nothing else.
        """
        try:
            return parse(*args)
        except META_SWITCHES:
            raise
        except SwitchError as error:
            positional = inspect.getfullargspec(self.main).args[1:]
            raise SystemExit(self.usage_error(usage_message(error, positional))) from None

    def usage_error(self, message: str) -> int:
        return refuse_usage(str(self.PROGNAME), message, self.environment.stderr)

    # ----- the flow shared by every script ----------------------------------------------

    def main(self) -> int:
        # SIGTERM (a CI cancelling the step, ``kill``) is answered as Ctrl+C is.
        previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            return self.run_script()
        finally:
            signal.signal(signal.SIGTERM, previous)

    def run_script(self) -> int:
        try:
            self.check_usage()
            server = resolve(self.server_url)
            self.ci = CiOutput(chosen_ci(cast("str | None", self.ci_choice), self.environment.variables))
        except (UsageError, ServerAddressError, CiChoiceError) as error:
            return self.usage_error(str(error))
        if self.junit and not os.access(os.path.dirname(os.path.abspath(self.junit)), os.W_OK):
            return self.usage_error(f"cannot write the JUnit report {self.junit}: no such writable folder")
        self.server = server
        self.followed: list[JobOutcome] = []  # every job followed, in turn: the JUnit report's testcases
        # Removed at the very end: Ctrl+C's table (pipelines) still reads what was streamed.
        self.streamed_logs = Path(tempfile.mkdtemp(prefix="hodei-job-logs-"))
        try:
            ensure_running(server)
            with HodeiClient(server) as client:
                status = int(self.run_jobs(client))
            self.write_report()
            return status
        except ClientError as error:
            return self.fail(str(error), error.status)
        except ServerAddressError as error:  # the embedded server could not be started
            return self.fail(str(error), ExitStatus.UNREACHABLE)
        except (PayloadError, OSError) as error:  # the job could not be built
            return self.fail(f"cannot build the job: {error}", ExitStatus.JOB_FAILED)
        except StreamerFailed as error:
            return error.status  # the streamer already said why, in one line
        except KeyboardInterrupt as interrupt:
            status = self.interrupted(answered=isinstance(interrupt, WatchInterrupted))
            self.write_report()  # what ended, and the job Ctrl+C stopped watching
            return status
        finally:
            shutil.rmtree(self.streamed_logs, ignore_errors=True)

    def run_jobs(self, client: HodeiClient) -> ExitStatus:
        outcome = self.run_job(client, self.job_request())
        self.print_summary(outcome)
        self.report_failure(client, outcome)
        return outcome.exit_status

    def report_failure(self, client: HodeiClient, outcome: JobOutcome) -> None:
        if outcome.exit_status != ExitStatus.OK and (hint := self.explain_failure(client, outcome)):
            self.say(hint)

    def write_report(self) -> None:
        if self.junit:
            write_junit(self.junit, str(self.PROGNAME), self.testcases())

    def testcases(self) -> list[ReportCase]:
        """The JUnit report: a testcase per job followed, and an error one for the job being
        followed when Ctrl+C came."""
        cases = [testcase(outcome.name, str(self.PROGNAME), outcome) for outcome in self.followed]
        if self.watched_job_id is not None:
            cases.append(self.interrupted_case(self.watched_name, str(self.PROGNAME)))
        return cases

    def interrupted_case(self, name: str, classname: str) -> ReportCase:
        """The job being followed when Ctrl+C came, as an error testcase: how long it was
        watched, why it has no end, its last lines."""
        lines = streamed_lines(self.streamed_log(self.watched_job_id))[-LAST_LINES:] if self.watched_job_id else []
        goes_on = "it was asked to cancel (--cancel-on-interrupt)" if self.cancel_on_interrupt else "the job goes on"
        return ReportCase(
            name,
            classname,
            time.monotonic() - self.watched_since,
            error=f"not followed to its end: {self.PROGNAME} was interrupted; {goes_on}",
            log_tail=lines,
        )

    def run_job(self, client: HodeiClient, request: JobRequest, title: str | None = None) -> JobOutcome:
        """Submit ``request``, stream its log in the chosen mode, return how it ended;
        ``title``: its group's in a CI."""
        spec = job_spec(request.payload, request.args, request.env, request.bundle)
        job_id = client.queue_job(
            request.name,
            spec.command,
            spec.arguments,
            description=request.description,
            timeout_s=request.timeout_s,
            tags=request.tags,
        )
        self.say(f"🚀 submitted job '{request.name}' as {job_id} to {client.server}")
        return self.follow(client, job_id, request.name, title=title)

    def follow(
        self, client: HodeiClient, job_id: str, name: str, stream_logs: bool = True, title: str | None = None
    ) -> JobOutcome:
        """Stream a job's log in the chosen mode (or only watch it) until it ends; how it
        ended.  In a CI, inside a group (``title``, else the job's name and id), a failure
        annotated after it."""
        title = title or f"🚀 job '{name}' ({job_id})"
        self.ci_commands(self.ci.open_group(title))
        try:
            outcome = self.followed_to_the_end(client, job_id, name, stream_logs)
        finally:
            self.ci_commands(self.ci.close_group())
        if outcome.exit_status != ExitStatus.OK:
            self.ci_commands(self.ci.failure(f"{title}: {outcome.status}", failure_message(outcome)))
        self.followed.append(outcome)
        return outcome

    def followed_to_the_end(self, client: HodeiClient, job_id: str, name: str, stream_logs: bool) -> JobOutcome:
        started = time.monotonic()
        self.watched_job_id, self.watched_name, self.watched_since = job_id, name, started
        self.status_seen_at: dict[str, float] = {}  # status → when (monotonic) this process first saw it
        foreground = self.streams_in_foreground and stream_logs
        streamed = self.streamed_log(job_id) if stream_logs and self.KEEPS_STREAMED_LINES else None
        streamer = (
            start_streamer(self.streamer_command(client.server, job_id, foreground, streamed, self.ci.kind))
            if stream_logs
            else None
        )
        try:
            if streamer is not None and foreground:
                status = streamer.proc.wait()
                if status not in (ExitStatus.OK, ExitStatus.JOB_FAILED):
                    raise StreamerFailed(status)
                job = surviving_restart(client.server, lambda: client.wait_final(job_id), self.say)
                self.status_seen_at.setdefault(status_name(job.status), time.monotonic())
            else:
                job = self.watch_status(client, job_id)
                if streamer is not None and not wait_for(streamer, STREAM_DRAIN_TIMEOUT_S):
                    self.say(
                        f"⚠️ the log stream of {job_id} did not end {STREAM_DRAIN_TIMEOUT_S:.0f}s "
                        "after the job did; stopped it"
                    )
        except KeyboardInterrupt:
            self.stop_watching(client, job_id, streamer)
            raise WatchInterrupted from None
        finally:
            if streamer is not None and not wait_for(streamer, INTERRUPT_GRACE_S):
                stop(streamer)
        self.watched_job_id = None
        outcome = outcome_of(
            job, job_id, name, fallback_duration_s=self.seen_running_s(job) or time.monotonic() - started
        )
        return dataclasses.replace(outcome, streamed=streamed)

    def seen_running_s(self, job: pb.GetJobResponse) -> float | None:
        """How long the job ran as this process saw it (RUNNING to its final status), if it saw both."""
        running, ended = self.status_seen_at.get("RUNNING"), self.status_seen_at.get(status_name(job.status))
        return ended - running if running is not None and ended is not None else None

    def streamed_log(self, job_id: str) -> Path:
        """The file of this run where the streamer copies the lines of ``job_id`` it shows."""
        return self.streamed_logs / f"{job_id}.log"

    @property
    def streams_in_foreground(self) -> bool:
        return self.foreground or (self.FOREGROUND_BY_DEFAULT and not self.background)

    @staticmethod
    def streamer_command(
        server: Server, job_id: str, foreground: bool, streamed: Path | None = None, ci: str = NO_CI
    ) -> BaseCommand:
        """The streamer on this terminal (foreground), or the original's ``stdbuf -o0 -e0 … 2>&1 | cat``.

        In the background, ``| cat`` reads the streamer's only pipe and writes to this
        process's stdout: no output is captured, so nothing can fill up and block the streamer.
        """
        streamer = streamer_command_line(server, job_id, streamed, ci)
        if foreground:
            return local[streamer[0]][streamer[1:]]
        unbuffered = local["stdbuf"]["-o0", "-e0"][streamer]
        return (unbuffered >= ERROUT) | local["cat"]

    def stop_watching(self, client: HodeiClient, job_id: str, streamer: Future | None) -> None:
        """Answer Ctrl+C while following ``job_id``: cancel it, or leave it running, and say which once."""
        if self.cancel_on_interrupt:
            response = client.cancel_job(job_id, reason=f"Ctrl+C in {self.PROGNAME} (--cancel-on-interrupt)")
            outcome = "cancelling it" if response.success else response.message
            self.say(f"\n⏹ stopped watching job {job_id} and, as --cancel-on-interrupt asks, {outcome}")
            # The streamer, still running, shows the job's last lines and how it ended.
        elif streamer is not None and streamer.proc.poll() is None:
            stop_source(streamer)  # SIGTERM: the streamer says the job goes on, and how to watch it again
        else:
            self.say(self.goodbye(job_id))

    def watch_status(self, client: HodeiClient, job_id: str) -> pb.GetJobResponse:
        """Poll GetJob until the job is final, reporting each status it passes through."""
        seen: int | None = None
        while True:
            job = surviving_restart(client.server, lambda: client.get_job(job_id), self.say)
            if job.status != seen:
                seen = job.status
                self.status_seen_at.setdefault(status_name(seen), time.monotonic())
                self.status_changed(job_id, job)
            if seen in FINAL_STATUSES:
                return job
            time.sleep(self.poll_interval_s)

    # ----- output -----------------------------------------------------------------------

    def print_summary(self, outcome: JobOutcome, table: Sequence[Sequence[str]] = ()) -> None:
        exit_code = exit_code_text(outcome)
        rows = [
            ("Job ID", outcome.job_id),
            ("Name", outcome.name),
            ("Status", f"{status_mark(outcome.status)} {outcome.status}{exit_code}"),
            ("Duration", f"{outcome.duration_s:.2f}s"),
        ]
        if outcome.error_message:
            rows.append(("Error", outcome.error_message))
        self.print_block("📋 Summary", rows + self.summary_rows(outcome), table)

    def print_block(self, title: str, rows: Sequence[tuple[str, str]], table: Sequence[Sequence[str]] = ()) -> None:
        """A summary block: a rule, the title, aligned ``label: value`` rows, a table (its
        first row the header), a rule; also appended to the step summary when there is one."""
        width = max(len(label) for label, _ in rows) + 1
        lines = [RULE, title, *(f"   {label + ':':<{width}} {value}" for label, value in rows)]
        lines += [f"   {line}" for line in (aligned(table) if table else [])]
        self.say("\n".join([*lines, RULE]))
        if summary := self.environment.step_summary:
            try:
                append_step_summary(summary, markdown_summary(title, rows, table))
            except OSError as error:
                self.say(f"{self.PROGNAME}: cannot append to the step summary {summary}: {error.strerror}")

    def ci_commands(self, lines: Sequence[str]) -> None:
        """CI commands of ours (groups, annotations), on stdout where the job's lines go."""
        if lines:
            print("\n".join(lines), file=self.environment.stdout, flush=True)

    def interrupted(self, answered: bool) -> int:
        """Ctrl+C reached ``main``: say so, unless ``stop_watching`` already did."""
        if not answered:
            self.say(self.goodbye(self.watched_job_id) if self.watched_job_id else "\n⏹ interrupted")
        return ExitStatus.INTERRUPTED

    def goodbye(self, job_id: str) -> str:
        """After Ctrl+C: the job goes on, and a command that watches it again, runnable as printed."""
        return "\n" + watch_again_hint([job_id], self.server_url, self.environment.launcher)

    def fail(self, message: str, status: ExitStatus) -> int:
        self.say(f"{self.PROGNAME}: {message}")
        return status

    def say(self, text: str) -> None:
        # stderr, like the streamer's banners, so that stdout carries only the job's log lines;
        # in a CI stdout, in order with them, and unable to issue a command (a server's words).
        if self.ci.active:
            print(self.ci.guarded(text), file=self.environment.stdout, flush=True)
        else:
            print(text, file=self.environment.stderr, flush=True)


def streamer_command_line(server: Server, job_id: str, streamed: Path | None = None, ci: str = NO_CI) -> list[str]:
    """This interpreter streaming one job: the streamer needs nothing on PATH.
    The embedded server goes unnamed, so that the streamer may start it again if it dies;
    ``streamed``: a file that also gets every line shown (``-o``); ``ci``: the CI, whose
    groups this process makes (the streamer guards the job's lines)."""
    where = [] if server.embedded else ["--server", server.target]
    also = ["-o", str(streamed)] if streamed else []
    in_ci = ["--ci", ci, "--no-ci-groups"] if ci != NO_CI else ["--ci", NO_CI]
    return [*module_command(STREAMER_MODULE), *where, *also, *in_ci, job_id]


def outcome_of(job: pb.GetJobResponse, job_id: str, name: str, fallback_duration_s: float) -> JobOutcome:
    """A ``JobOutcome`` from GetJob: the last execution's times and exit code when it has them."""
    execution = last_execution(job)
    ran_s = duration_s(job)
    return JobOutcome(
        job_id=job_id,
        name=name or job.job.name,  # the platform renames every job "Job <id's first 8>"
        status=status_name(job.status),
        exit_code=execution.exit_code if execution else "",
        duration_s=fallback_duration_s if ran_s is None else ran_s,
        error_message=execution.error_message if execution else "",
    )


def failure_message(outcome: JobOutcome) -> str:
    return failure_text(outcome.status, outcome.error_message, outcome.exit_code, outcome.job_id)


def testcase(name: str, classname: str, outcome: JobOutcome) -> ReportCase:
    """A job as a JUnit testcase: its time, and for a failure its message and last lines."""
    failed = outcome.exit_status != ExitStatus.OK
    return ReportCase(
        name=name,
        classname=classname,
        time_s=outcome.duration_s,
        failure=failure_message(outcome) if failed else None,
        log_tail=tuple(streamed_lines(outcome.streamed)[-LAST_LINES:]) if failed else (),
    )


def exit_code_text(outcome: JobOutcome) -> str:
    """ " (exit code N)" for the summary; a final job without one (the platform's FAILED) says "unknown"."""
    if outcome.exit_code:
        return f" (exit code {outcome.exit_code})"
    return f" ({UNKNOWN_EXIT_CODE})" if outcome.status in FINAL_STATUS_NAMES else ""


def job_log_lines(client: HodeiClient, outcome: JobOutcome) -> list[str]:
    """Every line the job wrote, oldest first (to explain a failure): what GetLogs holds, else,
    from a server that kept nothing once the job ended, what the streamer showed."""
    held = [entry.line for entry in client.all_logs(outcome.job_id)]
    return held or streamed_lines(outcome.streamed)


# A line of the streamer's plain output (``-o``, one job): "HH:MM:SS.mmm [OUT] text", "[ERR] text".
SHOWN_LINE = re.compile(r"^(?:\d\d:\d\d:\d\d\.\d{3} )?\[(?:OUT|ERR)\] ?(.*)$")


def streamed_lines(path: Path | None) -> list[str]:
    """The job's own lines (their text) in the streamer's ``-o`` file; none when there is no file."""
    if path is None or not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [match[1] for line in lines if (match := SHOWN_LINE.match(line))]


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Table rows as text, each column as wide as its widest cell (for stage tables, timelines)."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in rows]


def status_mark(status: str) -> str:
    return {"COMPLETED": "✅", "RUNNING": "⏳", "SKIPPED": "⏭", "INTERRUPTED": "⏹"}.get(status, "❌")


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def start_streamer(command: BaseCommand) -> Future:
    """Start ``command`` (the streamer, or its ``| cat`` pipeline) with SIGINT ignored.

    Only this process should see the terminal's Ctrl+C (see the module docstring).  An
    ignored signal stays ignored across exec, and Python leaves an ignored SIGINT alone; the
    handler is back in place before any Ctrl+C could matter.  stdio is inherited, as ``FG``
    would do, but the future gives the handle that Ctrl+C needs to end the streamer.
    """
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return command & BG(retcode=None, stdin=None, stdout=None, stderr=None)
    finally:
        signal.signal(signal.SIGINT, previous)


def wait_for(future: Future, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for a background pipeline; True when it has ended."""
    try:
        cast("subprocess.Popen[bytes]", future.proc).wait(timeout=timeout_s)  # plumbum's stub lacks ``timeout``
    except subprocess.TimeoutExpired:
        return False
    return True


def stop_source(future: Future) -> None:
    """SIGTERM the streamer alone (the source of ``a | b``), leaving cat to pass on its last words."""
    process = getattr(future.proc, "srcproc", None) or future.proc
    if process.poll() is None:
        process.terminate()


def stop(future: Future) -> None:
    """Stop every process of a background pipeline (``a | b``: ``proc.srcproc`` is ``a``)."""
    processes = [getattr(future.proc, "srcproc", None), future.proc]
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
    for process in processes:
        if process is not None:
            process.wait()
