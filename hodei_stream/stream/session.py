"""One run of stream-logs: the jobs named, their followers, and each batch of lines on its
way from subscribe through format to write; the end lines and the exit status.

One job named by id is read on this thread (the fastest way to the screen); several jobs,
jobs chosen by what they are and an --until to come are watched by ``many.py``."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from hodei_stream.api import FINAL_STATUSES, JOB_STATUS_COMPLETED, check_job_id, last_execution, status_name
from hodei_stream.command_line import watch_again_hint
from hodei_stream.endpoint import Server, ServerAddressError, ensure_running, resolve
from hodei_stream.environment import Environment
from hodei_stream.exit_codes import ClientError, ExitStatus, worst
from hodei_stream.records import LogLine
from hodei_stream.stream import format as fmt
from hodei_stream.stream.in_ci import JobsInCi
from hodei_stream.stream.options import DEFAULT_RECONNECT_TIMEOUT_S, Options
from hodei_stream.stream.subscribe import Follower, LogClient, ReconnectPolicy
from hodei_stream.stream.write import Writer


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
        # Labels as asked (several ids, or jobs chosen by what they are), even when one of
        # them turns out unknown.
        self.several = len(options.job_ids) > 1 or options.selects
        self.prefix = options.prefix or ("name" if options.selects else "id")
        labelled = self.several and self.prefix != "none"
        # --since/--until/--level with --tail N: the last N lines they keep, so the whole
        # history is read and cut here.
        windowed = options.since is not None or options.until is not None or options.level is not None
        self.tail_here = bool(options.tail) and windowed
        # What the reader sees: colours, and control characters escaped on a terminal;
        # the export file (-o) gets the exact text, uncoloured.
        escape = not options.raw and not options.json and log_is_terminal
        timestamps = not options.no_timestamps
        self.style = fmt.Style(colour=self.colour, timestamps=timestamps, job_labels=labelled, escape=escape)
        self.plain = fmt.Style(colour=False, timestamps=timestamps, job_labels=labelled, labels=self.style.labels)
        self.stats = LatencyStats() if options.stats else None
        timeout = DEFAULT_RECONNECT_TIMEOUT_S if options.reconnect_timeout is None else options.reconnect_timeout
        self.policy = ReconnectPolicy(enabled=not options.no_reconnect, give_up_after_s=timeout)
        self.followers: list[Follower] = []
        self.in_ci = JobsInCi(options, writer)

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
            if options.selects:
                hint = "⏹  stopped watching; the jobs go on."
            else:
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
                if not options.quiet and not self.in_ci.grouped:  # in a CI the group's title
                    self.writer.notice(fmt.format_header(job_id, self.colour_err))
            self.in_ci.opened(found)
            self.followers = [self.follower_for(client, job_id) for job_id in found]
            if options.selects or len(self.followers) != 1 or options.until is not None or self.tail_here:
                from hodei_stream.stream.many import ManyJobs  # here: one job is followed without threads

                statuses += ManyJobs(self, server, client).run()
            else:
                statuses += self._follow()
        except (ClientError, ServerAddressError) as error:  # the latter: the embedded server would not start
            self.in_ci.close(self.followed_ids, str(error))
            self.writer.notice(f"stream-logs: {error}")
            return error.status
        except (KeyboardInterrupt, Interrupted):
            self.in_ci.close(self.followed_ids, "stream-logs was interrupted; the job goes on")
            raise
        finally:
            self.in_ci.close(self.followed_ids)
        if self.stats is not None:
            self.writer.notice(self.stats.summary())
        return worst(statuses)

    @property
    def followed_ids(self) -> list[str]:
        """The jobs followed so far (a selector's join as they are found), ended or not."""
        return [follower.job_id for follower in self.followers]

    def follower_for(self, client: LogClient, job_id: str, whole_log: bool = False) -> Follower:
        """A follower of the job as the options ask (history, tail, reconnects); with
        ``whole_log``, from its first line whatever they say of history."""
        options = self.options
        return Follower(
            client,
            job_id,
            history=whole_log or (not options.no_history and options.tail != 0),
            tail=0 if self.tail_here else options.tail or 0,
            reconnect=self.policy,
            notice=self.writer.notice,
        )

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
            shown = fmt.format_lines(batch, self.style, shown_ns)
        if self.in_ci.keeps_lines:
            self.in_ci.saw(batch)
        exported = None
        if self.writer.export_fd is not None:
            exported = shown if not self.colour else fmt.format_lines(batch, self.plain, shown_ns)
        self.writer.log(shown, exported)

    def _follow(self) -> list[int]:
        """The one job's lines until it ended; its exit status."""
        if self.options.no_follow:
            return [self._history_only(follower) for follower in self.followers]
        # One job: read the stream on this thread, no hand-off in the way of latency.
        follower = self.followers[0]
        for batch in follower.batches():
            self.show(batch)
        return [self.end(follower)]

    def history(self, follower: Follower) -> list[LogLine]:
        """The job's history as shown before its live lines (with --tail N after a window:
        the last N lines the filters keep)."""
        from hodei_stream.stream.merge import history_of

        return history_of(follower, self.keep if self.tail_here else None, self.options.tail)

    def _history_only(self, follower: Follower) -> int:
        if self.options.tail:
            self.show(
                list(deque((line for batch in follower.history_batches() for line in batch), maxlen=self.options.tail))
            )
        else:
            for batch in follower.history_batches():
                self.show(batch)
        return self.stop_here(follower, "history shown")

    def stop_here(self, follower: Follower, how: str) -> int:
        """The end line of a job no longer followed: its final status, or 5 (it goes on)."""
        job = follower.client.get_job(follower.job_id)
        follower.final = job
        if job.status in FINAL_STATUSES:
            return self.end(follower, how=how)
        self.end(follower, how=f"{how} (the job goes on)")
        return ExitStatus.STILL_RUNNING

    def end(self, follower: Follower, how: str = "stream ended") -> int:
        """The job's end line (unless --quiet), and its exit status."""
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
        end_line = None
        if not self.options.quiet:
            label = self.style.label(follower.job_id) if self.style.job_labels else ""
            end_line = fmt.format_ending(ending, self.colour_err, label=label)
        self.in_ci.job_ended(ending, end_line)
        if job.status == JOB_STATUS_COMPLETED:
            return ExitStatus.OK
        return ExitStatus.JOB_FAILED
