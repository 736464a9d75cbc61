"""The ``stream-logs`` command: options, wiring subscribe → format → write, exit statuses.

Kept light on imports (argparse, no plumbum): start-up time is part of how fast the first
line reaches the screen.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hodei_stream.api import FINAL_STATUSES, check_job_id, status_name
from hodei_stream.endpoint import ServerAddressError, ensure_running, resolve
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import LogLine
from hodei_stream.stream import format as fmt
from hodei_stream.stream.subscribe import Follower, LogClient, ReconnectPolicy
from hodei_stream.stream.write import ReaderGone, Writer

EPILOG = """\
exit status: 0 the job(s) completed; 1 a job failed, timed out or was cancelled; 2 usage
error; 3 no such job; 4 server unreachable (or not a Hodei server); 130 interrupted (the
job goes on).  Several jobs: the worst of their statuses.
environment: HODEI_GRPC_URL (server when --server is not given), NO_COLOR, FORCE_COLOR,
HODEI_STREAM_HOME (the embedded server's state folder)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stream-logs",
        description="Show Hodei jobs' logs live, each line the moment the job writes it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("job_ids", nargs="+", metavar="JOB_ID", help="job id(s) to follow (UUIDs)")
    parser.add_argument("--server", metavar="URL", help="host:port or unix:/path (default: $HODEI_GRPC_URL, else the embedded server)")
    history = parser.add_argument_group("what to show")
    history.add_argument("--tail", type=int, default=0, metavar="N", help="only the last N lines of history, then follow")
    history.add_argument("--no-history", action="store_true", help="only lines written from now on")
    history.add_argument("--no-follow", action="store_true", help="print the history and exit, without waiting for the job")
    history.add_argument("--grep", action="append", default=[], metavar="REGEX", help="only lines matching REGEX (repeatable: any of them)")
    history.add_argument("--invert", action="store_true", help="with --grep: only lines matching none of them")
    streams = history.add_mutually_exclusive_group()
    streams.add_argument("--stdout-only", action="store_true", help="only the job's stdout lines")
    streams.add_argument("--stderr-only", action="store_true", help="only the job's stderr lines")
    look = parser.add_argument_group("how to show it")
    look.add_argument("--color", "--colour", choices=("auto", "always", "never"), default="auto", help="colours (auto: only on a terminal; NO_COLOR/FORCE_COLOR honoured)")
    look.add_argument("--no-timestamps", action="store_true", help="leave out the time of each line")
    look.add_argument("--arrival-time", action="store_true", help="show when each line arrived here, not when the job wrote it")
    look.add_argument("-q", "--quiet", action="store_true", help="log lines only: no header, no end line")
    look.add_argument("--stderr", action="store_true", help="write everything to stderr, as the original client did")
    look.add_argument("--json", action="store_true", help="one JSON object per line on stdout (job_id, sequence, timestamp, stream, line)")
    look.add_argument("-o", "--output", metavar="FILE", help="also write plain lines to FILE, flushed per line")
    look.add_argument("--stats", action="store_true", help="at the end: line count and delivery latency p50/p99/max (stderr)")
    connection = parser.add_argument_group("connection")
    connection.add_argument("--no-reconnect", action="store_true", help="fail at once when the connection drops")
    connection.add_argument("--reconnect-timeout", type=float, default=60.0, metavar="S", help="give up reconnecting after S seconds (default 60)")
    return parser


def use_colour(choice: str, fd: int) -> bool:
    """Colour on the stream actually written: --color, then NO_COLOR / FORCE_COLOR, then isatty."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "0") not in ("", "0", "false"):
        return True
    return os.isatty(fd) and os.environ.get("TERM") != "dumb"


def line_filter(args: argparse.Namespace) -> Callable[[LogLine], bool] | None:
    """The predicate --grep/--invert/--stdout-only/--stderr-only describe (None: keep all)."""
    patterns = [re.compile(p) for p in args.grep]
    if not patterns and not args.stdout_only and not args.stderr_only:
        return None

    def keep(line: LogLine) -> bool:
        if (args.stdout_only and line.is_stderr) or (args.stderr_only and not line.is_stderr):
            return False
        if patterns:
            return any(p.search(line.text) for p in patterns) != args.invert
        return True

    return keep


@dataclass
class LatencyStats:
    """Delivery latency (arrival minus capture) of the lines that were live when they came."""

    since_ns: int = field(default_factory=time.time_ns)
    lines: int = 0
    latencies_ns: list[int] = field(default_factory=list)

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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_fd = 2 if args.stderr else 1
    if args.json:
        colour = False
    else:
        colour = use_colour(args.color, log_fd)
    export_fd = None
    if args.output:
        try:
            export_fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        except OSError as error:
            print(f"stream-logs: cannot write {args.output}: {error.strerror}", file=sys.stderr)
            return ExitStatus.USAGE
    writer = Writer(log_fd=log_fd, notice_fd=2, export_fd=export_fd)
    try:
        keep = line_filter(args)
    except re.error as error:
        writer.notice(f"stream-logs: bad --grep pattern: {error}")
        return ExitStatus.USAGE
    signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        return Session(args, writer, colour, keep).run()
    except ReaderGone:
        # Our reader left (| head): nothing more to show anyone. Point stdout at /dev/null
        # so the interpreter's own exit does not meet the broken pipe again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        return ExitStatus.OK
    finally:
        writer.close_export()


class Session:
    """One run of stream-logs: the jobs, their followers, and what is shown."""

    def __init__(
        self,
        args: argparse.Namespace,
        writer: Writer,
        colour: bool,
        keep: Callable[[LogLine], bool] | None,
    ) -> None:
        self.args = args
        self.writer = writer
        self.colour = colour
        self.keep = keep
        self.style = fmt.Style(colour=colour, timestamps=not args.no_timestamps, job_labels=len(args.job_ids) > 1)
        self.plain = fmt.Style(colour=False, timestamps=not args.no_timestamps, job_labels=len(args.job_ids) > 1)
        self.stats = LatencyStats() if args.stats else None
        self.followers: list[Follower] = []

    def run(self) -> int:
        args = self.args
        try:
            job_ids = [check_job_id(job_id) for job_id in dict.fromkeys(args.job_ids)]
            server = resolve(args.server)
            ensure_running(server)
        except (ClientError, ServerAddressError) as error:
            self.writer.notice(f"stream-logs: {error}")
            return error.status
        client = LogClient(server)
        policy = ReconnectPolicy(enabled=not args.no_reconnect, give_up_after_s=args.reconnect_timeout)
        try:
            for job_id in job_ids:
                client.get_job(job_id)  # NOT_FOUND / unreachable: before any banner
                if not args.quiet:
                    self.writer.notice(fmt.format_header(job_id, self.colour_err))
            self.followers = [
                Follower(
                    client,
                    job_id,
                    history=not args.no_history,
                    tail=max(args.tail, 0),
                    reconnect=policy,
                    notice=self.writer.notice,
                )
                for job_id in job_ids
            ]
            try:
                statuses = self._follow()
            except (KeyboardInterrupt, Interrupted):
                for follower in self.followers:
                    follower.cancel()
                ids = " ".join(job_ids)
                self.writer.notice(
                    f"\n⏹  stopped watching; the job goes on. Watch it again with: stream-logs {ids}"
                )
                return ExitStatus.INTERRUPTED
        except ClientError as error:
            self.writer.notice(f"stream-logs: {error}")
            return error.status
        if self.stats is not None:
            self.writer.notice(self.stats.summary())
        return max(statuses)

    @property
    def colour_err(self) -> bool:
        return self.colour if self.args.stderr else use_colour(self.args.color, 2)

    def show(self, batch: list[LogLine]) -> None:
        """Lines that arrived together: measured, filtered, formatted, written at once."""
        arrived_ns = time.time_ns()
        if self.stats is not None:
            for line in batch:
                self.stats.add(line, arrived_ns)
        if self.keep is not None:
            batch = [line for line in batch if self.keep(line)]
        shown_ns = arrived_ns if self.args.arrival_time else None
        if self.args.json:
            shown = [fmt.format_json(line) for line in batch]
        else:
            shown = [fmt.format_line(line, self.style, shown_ns) for line in batch]
        exported = None
        if self.writer.export_fd is not None:
            exported = shown if not self.colour else [fmt.format_line(line, self.plain, shown_ns) for line in batch]
        self.writer.log(shown, exported)

    def _follow(self) -> list[int]:
        """Show every follower's lines until all have ended; their exit statuses."""
        if self.args.no_follow:
            return [self._history_only(follower) for follower in self.followers]
        if len(self.followers) == 1:
            # One job: read the stream on this thread, no hand-off in the way of latency.
            follower = self.followers[0]
            for batch in follower.batches():
                self.show(batch)
            return [self._end(follower)]
        return self._follow_several()

    def _follow_several(self) -> list[int]:
        arrivals: queue.SimpleQueue[list[LogLine] | tuple[Follower, Exception | None]] = queue.SimpleQueue()

        def pump(follower: Follower) -> None:
            try:
                for batch in follower.batches():
                    arrivals.put(batch)
                arrivals.put((follower, None))
            except ClientError as error:
                arrivals.put((follower, error))
            except Exception as error:  # a cancelled stream at Ctrl+C ends its thread quietly
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
        if self.args.tail > 0:
            self.show(list(deque((line for batch in follower.history_batches() for line in batch), maxlen=self.args.tail)))
        else:
            for batch in follower.history_batches():
                self.show(batch)
        job = follower.client.get_job(follower.job_id)
        follower.final = job
        if job.status in FINAL_STATUSES:
            return self._end(follower, how="history shown")
        return self._end(follower, how="history shown (the job goes on)", running_ok=True)

    def _end(self, follower: Follower, how: str = "stream ended", running_ok: bool = False) -> int:
        job = follower.final
        execution = job.executions[-1] if job.executions else None
        duration = None
        if execution is not None and execution.HasField("start_time") and execution.HasField("end_time"):
            duration = (execution.end_time.ToNanoseconds() - execution.start_time.ToNanoseconds()) / 1e9
        ending = fmt.Ending(
            job_id=follower.job_id,
            status=status_name(job.status),
            exit_code=execution.exit_code if execution is not None else "",
            duration_s=duration,
            error_message=execution.error_message if execution is not None else "",
            how=how,
        )
        if not self.args.quiet:
            self.writer.notice(fmt.format_ending(ending, self.colour_err, job_labels=len(self.followers) > 1))
        if job.status == pb.JOB_STATUS_COMPLETED or running_ok:
            return ExitStatus.OK
        return ExitStatus.JOB_FAILED


if __name__ == "__main__":
    sys.exit(main())
