"""The ``stream-logs`` command: options, wiring subscribe → format → write, exit statuses.

Kept light on imports (argparse, no plumbum): start-up time is part of how fast the first
line reaches the screen.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple

from hodei_stream.api import FINAL_STATUSES, JOB_STATUS_COMPLETED, check_job_id, last_execution, status_name
from hodei_stream.command_line import (
    UsageParser,
    bounded,
    silence_stdout,
    watch_again_hint,
)
from hodei_stream.endpoint import Server, ServerAddressError, ensure_running, resolve
from hodei_stream.environment import Environment
from hodei_stream.exit_codes import ClientError, ExitStatus, worst
from hodei_stream.records import LogLine
from hodei_stream.stream import format as fmt
from hodei_stream.stream.subscribe import Follower, LogClient, ReconnectPolicy
from hodei_stream.stream.write import ReaderGone, Writer

DEFAULT_RECONNECT_TIMEOUT_S = 60.0
MAX_RECONNECT_TIMEOUT_S = 7 * 24 * 3600  # a week: finite, so a lost server is given up on some day

EPILOG = """\
exit status: 0 the job(s) completed; 1 a job failed, timed out or was cancelled; 2 usage
error; 3 no such job; 4 server unreachable, not a Hodei server, or it ended the call; 5
--no-follow and the job has not ended; 130 interrupted by you (the job goes on).  Several
jobs: the worst of their statuses (130, 4, 3, 2, 1, 5, 0 from worst to best).
on a terminal, control characters in log lines (but tab) are shown as \\xHH; --raw or a
pipe / file gets them as the job wrote them.
environment: HODEI_GRPC_URL (server when --server is not given), NO_COLOR, FORCE_COLOR,
HODEI_STREAM_HOME (the embedded server's state folder)."""


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(
        prog="stream-logs",
        description="Show Hodei jobs' logs live, each line the moment the job writes it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_version()
    parser.add_argument("job_ids", nargs="+", metavar="JOB_ID", help="job id(s) to follow (UUIDs)")
    parser.add_argument(
        "--server", metavar="URL", help="host:port or unix:/path (default: $HODEI_GRPC_URL, else the embedded server)"
    )
    add_what_to_show(parser)
    add_how_to_show(parser)
    connection = parser.add_argument_group("connection")
    connection.add_argument("--no-reconnect", action="store_true", help="fail at once when the connection drops")
    connection.add_argument(
        "--reconnect-timeout",
        type=bounded(float, 0, MAX_RECONNECT_TIMEOUT_S, unit="s"),
        metavar="S",
        help=f"give up reconnecting after S seconds (0 to {MAX_RECONNECT_TIMEOUT_S}; default 60)",
    )
    return parser


def add_what_to_show(parser: argparse.ArgumentParser) -> None:
    """Which lines: history or not, and filters."""
    history = parser.add_argument_group("what to show")
    history.add_argument(
        "--tail", type=bounded(int, 0), metavar="N", help="only the last N lines of history (N >= 0), then follow"
    )
    history.add_argument("--no-history", action="store_true", help="only lines written from now on")
    history.add_argument(
        "--no-follow", action="store_true", help="print the history and exit, without waiting for the job"
    )
    history.add_argument(
        "--grep",
        action="append",
        default=[],
        metavar="REGEX",
        help="only lines matching REGEX (repeatable: any of them)",
    )
    history.add_argument("--invert", action="store_true", help="with --grep: only lines matching none of them")
    streams = history.add_mutually_exclusive_group()
    streams.add_argument("--stdout-only", action="store_true", help="only the job's stdout lines")
    streams.add_argument("--stderr-only", action="store_true", help="only the job's stderr lines")


def add_how_to_show(parser: argparse.ArgumentParser) -> None:
    """How the lines look, and where they go."""
    look = parser.add_argument_group("how to show it")
    look.add_argument(
        "--color",
        "--colour",
        choices=("auto", "always", "never"),
        default="auto",
        help="colours (auto: only on a terminal; NO_COLOR/FORCE_COLOR honoured)",
    )
    look.add_argument("--no-timestamps", action="store_true", help="leave out the time of each line")
    look.add_argument(
        "--arrival-time", action="store_true", help="show when each line arrived here, not when the job wrote it"
    )
    look.add_argument("-q", "--quiet", action="store_true", help="log lines only: no header, no end line")
    look.add_argument("--stderr", action="store_true", help="write everything to stderr, as the original client did")
    look.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line on stdout (job_id, sequence, timestamp, stream, line)",
    )
    look.add_argument("-o", "--output", metavar="FILE", help="also write plain lines to FILE, flushed per line")
    look.add_argument(
        "--raw",
        action="store_true",
        help="pass control characters (escape sequences) to the terminal as the job wrote them",
    )
    look.add_argument(
        "--stats", action="store_true", help="at the end: line count and delivery latency p50/p99/max (stderr)"
    )


class Options(NamedTuple):
    """stream-logs' command line, parsed: what to follow, what to show and how, how to connect."""

    job_ids: tuple[str, ...]
    server: str | None
    tail: int | None
    no_history: bool
    no_follow: bool
    grep: tuple[str, ...]
    invert: bool
    stdout_only: bool
    stderr_only: bool
    color: str
    no_timestamps: bool
    arrival_time: bool
    quiet: bool
    stderr: bool
    json: bool
    output: str | None
    raw: bool
    stats: bool
    no_reconnect: bool
    reconnect_timeout: float | None

    @classmethod
    def of(cls, parsed: argparse.Namespace) -> Options:
        """The options ``build_parser()`` parsed, frozen (its lists as tuples)."""
        values = {name: getattr(parsed, name) for name in cls._fields}
        return cls(**{**values, "job_ids": tuple(parsed.job_ids), "grep": tuple(parsed.grep)})


def parse_options(argv: Sequence[str] | None) -> Options:
    """The command line as ``Options``, checked once: a usage error ends the command (exit 2)."""
    parser = build_parser()
    options = Options.of(parser.parse_args(argv))
    if (problem := conflict(options)) is not None:
        parser.error(problem)
    return options


def conflict(options: Options) -> str | None:
    """Options that ask for two incompatible things: the usage error to give, or None."""
    if options.no_follow and (options.no_history or options.tail == 0):
        return f"{'--no-history' if options.no_history else '--tail 0'} and --no-follow together would show nothing"
    if options.no_history and options.tail is not None:
        return "--tail N shows history; --no-history shows none: choose one"
    if options.invert and not options.grep:
        return "--invert needs --grep"
    if options.no_reconnect and options.reconnect_timeout is not None:
        return "--reconnect-timeout has no effect with --no-reconnect"
    if options.json and options.raw:
        return "--json escapes every control character: --raw does not apply"
    if options.json and options.color == "always":
        return "--json is never coloured: --color=always does not apply"
    if options.no_timestamps and options.arrival_time:
        return "--arrival-time changes the time shown; --no-timestamps shows none"
    return None


def line_filter(options: Options) -> Callable[[LogLine], bool] | None:
    """The predicate --grep/--invert/--stdout-only/--stderr-only describe (None: keep all)."""
    patterns = [re.compile(p) for p in options.grep]
    if not patterns and not options.stdout_only and not options.stderr_only:
        return None

    def keep(line: LogLine) -> bool:
        if (options.stdout_only and line.is_stderr) or (options.stderr_only and not line.is_stderr):
            return False
        if patterns:
            return bool(any(p.search(line.text) for p in patterns) != options.invert)
        return True

    return keep


class LatencyStats:
    """Delivery latency (arrival minus capture) of the lines that were live when they came."""

    def __init__(self) -> None:
        self.since_ns = time.time_ns()
        self.lines = 0
        self.latencies_ns: list[int] = []

    def add(self, line: LogLine, arrived_ns: int) -> None:
        self.lines += 1
        if line.captured_ns >= self.since_ns:  # history written before we came measures nothing
            self.latencies_ns.append(arrived_ns - line.captured_ns)

    def summary(self) -> str:
        live = sorted(self.latencies_ns)
        if not live:
            return f"📊 {self.lines} lines, none live (no delivery latency to measure)"

        def ms(q: float) -> str:
            return f"{live[min(len(live) - 1, int(q * len(live)))] / 1e6:.2f}"

        return (
            f"📊 {self.lines} lines ({len(live)} live); delivery latency p50 {ms(0.50)} ms, "
            f"p99 {ms(0.99)} ms, max {live[-1] / 1e6:.2f} ms"
        )


class Interrupted(Exception):
    """Ctrl+C or SIGTERM: stop watching."""


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted


def main(argv: Sequence[str] | None = None, environment: Environment | None = None) -> int:
    """stream-logs: its command line (``sys.argv`` by default) in this process's environment
    (or the one given); the exit status."""
    signal.signal(signal.SIGTERM, _raise_interrupted)
    options = parse_options(argv)
    env = Environment.of_process() if environment is None else environment
    export_fd = None
    if options.output:
        try:
            export_fd = os.open(options.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        except OSError as error:
            print(f"stream-logs: cannot write {options.output}: {error.strerror}", file=env.stderr)
            return ExitStatus.USAGE
    writer = Writer(log_fd=2 if options.stderr else 1, notice_fd=2, export_fd=export_fd)
    try:
        keep = line_filter(options)
    except re.error as error:
        writer.notice(f"stream-logs: bad --grep pattern: {error}")
        return ExitStatus.USAGE
    try:
        return Session(options, env, writer, keep).run()
    except ReaderGone:
        silence_stdout()  # our reader left (| head): nothing more to show anyone
        return ExitStatus.OK
    finally:
        writer.close_export()


class Session:
    """One run of stream-logs: the jobs, their followers, and what is shown."""

    def __init__(
        self, options: Options, env: Environment, writer: Writer, keep: Callable[[LogLine], bool] | None
    ) -> None:
        self.options = options
        self.env = env
        self.writer = writer
        self.keep = keep
        log_is_terminal = env.stderr_isatty if options.stderr else env.stdout_isatty
        # Colour where the log lines go, and where the banners go (stderr).
        self.colour = False if options.json else env.use_colour(options.color, on_stderr=options.stderr)
        self.colour_err = self.colour if options.stderr else env.use_colour(options.color, on_stderr=True)
        # Labels as asked (several ids), even when one of them turns out unknown.
        self.several = len(options.job_ids) > 1
        # What the reader sees: colours, and control characters escaped on a terminal;
        # the export file (-o) gets the exact text, uncoloured.
        escape = not options.raw and not options.json and log_is_terminal
        timestamps = not options.no_timestamps
        self.style = fmt.Style(colour=self.colour, timestamps=timestamps, job_labels=self.several, escape=escape)
        self.plain = fmt.Style(colour=False, timestamps=timestamps, job_labels=self.several)
        self.stats = LatencyStats() if options.stats else None
        self.followers: list[Follower] = []

    def run(self) -> int:
        options = self.options
        try:
            # Any case is a job id; the server's (and the hint's) form is lowercase.
            job_ids = list(dict.fromkeys(check_job_id(job_id) for job_id in options.job_ids))
            server = resolve(options.server)
        except (ClientError, ServerAddressError) as error:
            self.writer.notice(f"stream-logs: {error}")
            return error.status
        try:
            return self._watch(server, job_ids)
        except (KeyboardInterrupt, Interrupted):  # the user's, from the first call on
            for follower in self.followers:
                follower.cancel()
            hint = watch_again_hint(job_ids, self._server_to_repeat(server), self.env.launcher)
            self.writer.notice(f"\n{hint}")
            return ExitStatus.INTERRUPTED

    def _server_to_repeat(self, server: Server) -> str | None:
        """``--server`` as the hint must repeat it: not when the command finds the same
        server without it (the embedded one a job script named, say)."""
        try:
            default = resolve(None).target
        except ServerAddressError:
            default = None
        return self.options.server if self.options.server and server.target != default else None

    def _watch(self, server: Server, job_ids: list[str]) -> int:
        options = self.options
        statuses: list[int] = []
        try:
            ensure_running(server)
            client = LogClient(server)
            found = []
            for job_id in job_ids:
                try:
                    client.get_job(job_id)  # NOT_FOUND / unreachable: before any banner
                except ClientError as error:
                    if error.status != ExitStatus.NOT_FOUND:
                        raise
                    self.writer.notice(f"stream-logs: {error}")  # the others are still followed
                    statuses.append(error.status)
                    continue
                found.append(job_id)
                if not options.quiet:
                    self.writer.notice(fmt.format_header(job_id, self.colour_err))
            timeout = DEFAULT_RECONNECT_TIMEOUT_S if options.reconnect_timeout is None else options.reconnect_timeout
            policy = ReconnectPolicy(enabled=not options.no_reconnect, give_up_after_s=timeout)
            self.followers = [
                Follower(
                    client,
                    job_id,
                    history=not options.no_history and options.tail != 0,
                    tail=options.tail or 0,
                    reconnect=policy,
                    notice=self.writer.notice,
                )
                for job_id in found
            ]
            statuses += self._follow()
        except (ClientError, ServerAddressError) as error:  # the latter: the embedded server would not start
            self.writer.notice(f"stream-logs: {error}")
            return error.status
        if self.stats is not None:
            self.writer.notice(self.stats.summary())
        return worst(statuses)

    def show(self, batch: list[LogLine]) -> None:
        """Lines that arrived together: measured, filtered, formatted, written at once."""
        arrived_ns = time.time_ns()
        if self.stats is not None:
            for line in batch:
                self.stats.add(line, arrived_ns)
        if self.keep is not None:
            batch = [line for line in batch if self.keep(line)]
        shown_ns = arrived_ns if self.options.arrival_time else None
        if self.options.json:
            shown = [fmt.format_json(line) for line in batch]
        else:
            shown = [fmt.format_line(line, self.style, shown_ns) for line in batch]
        exported = None
        if self.writer.export_fd is not None:
            exported = shown if not self.colour else [fmt.format_line(line, self.plain, shown_ns) for line in batch]
        self.writer.log(shown, exported)

    def _follow(self) -> list[int]:
        """Show every follower's lines until all have ended; their exit statuses."""
        if self.options.no_follow:
            return [self._history_only(follower) for follower in self.followers]
        if len(self.followers) == 1:
            # One job: read the stream on this thread, no hand-off in the way of latency.
            follower = self.followers[0]
            for batch in follower.batches():
                self.show(batch)
            return [self._end(follower)]
        return self._follow_several()

    def _follow_several(self) -> list[int]:
        import queue  # here: one job (the common case) is followed without threads
        import threading

        arrivals: queue.SimpleQueue[list[LogLine] | tuple[Follower, Exception | None]] = queue.SimpleQueue()

        def pump(follower: Follower) -> None:
            try:
                for batch in follower.batches():
                    arrivals.put(batch)
                arrivals.put((follower, None))
            except ClientError as error:
                arrivals.put((follower, error))
            except Exception as error:  # noqa: BLE001 (a cancelled stream at Ctrl+C ends its thread quietly)
                arrivals.put((follower, error))

        for follower in self.followers:
            threading.Thread(target=pump, args=(follower,), daemon=True).start()
        statuses: list[int] = []
        while len(statuses) < len(self.followers):
            item = arrivals.get()
            if isinstance(item, list):
                self.show(item)
                continue
            follower, error = item
            if isinstance(error, ClientError):
                self.writer.notice(f"stream-logs: {error}")
                statuses.append(error.status)
            elif error is not None:
                raise error
            else:
                statuses.append(self._end(follower))
        return statuses

    def _history_only(self, follower: Follower) -> int:
        if self.options.tail:
            self.show(
                list(deque((line for batch in follower.history_batches() for line in batch), maxlen=self.options.tail))
            )
        else:
            for batch in follower.history_batches():
                self.show(batch)
        job = follower.client.get_job(follower.job_id)
        follower.final = job
        if job.status in FINAL_STATUSES:
            return self._end(follower, how="history shown")
        self._end(follower, how="history shown (the job goes on)")
        return ExitStatus.STILL_RUNNING

    def _end(self, follower: Follower, how: str = "stream ended") -> int:
        job = follower.final
        assert job is not None, "a follower that ended has the job's final answer"
        execution = last_execution(job)
        ending = fmt.Ending(
            job_id=follower.job_id,
            status=status_name(job.status),
            exit_code=execution.exit_code if execution is not None else "",
            duration_s=execution.duration_s if execution is not None else None,
            error_message=execution.error_message if execution is not None else "",
            how=how,
        )
        if not self.options.quiet:
            self.writer.notice(fmt.format_ending(ending, self.colour_err, job_labels=self.several))
        if job.status == JOB_STATUS_COMPLETED:
            return ExitStatus.OK
        return ExitStatus.JOB_FAILED


if __name__ == "__main__":
    sys.exit(main())
