"""One run of stream-logs: the jobs named, their followers, and each batch of lines on its
way from subscribe through format to write; the end lines and the exit status.

One job named by id is read on this thread (the fastest way to the screen); several jobs,
jobs chosen by what they are (``selection.py``) and a time window to end at go through
``merge.py``: histories merged by time, then live lines as they come."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from hodei_stream.api import FINAL_STATUSES, JOB_STATUS_COMPLETED, check_job_id, last_execution, status_name
from hodei_stream.command_line import watch_again_hint
from hodei_stream.endpoint import Server, ServerAddressError, ensure_running, resolve
from hodei_stream.environment import Environment
from hodei_stream.exit_codes import ClientError, ExitStatus, worst
from hodei_stream.records import LogLine
from hodei_stream.stream import format as fmt
from hodei_stream.stream.options import DEFAULT_RECONNECT_TIMEOUT_S, Options
from hodei_stream.stream.subscribe import Follower, LogClient, ReconnectPolicy
from hodei_stream.stream.write import Writer

if TYPE_CHECKING:
    from hodei_stream.stream.merge import Gathering
    from hodei_stream.stream.selection import Found, JobFinder, Labels, Polled


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
                if not options.quiet:
                    self.writer.notice(fmt.format_header(job_id, self.colour_err))
            self.followers = [self._follower(client, job_id) for job_id in found]
            if options.selects or len(self.followers) != 1 or options.until is not None or self.tail_here:
                statuses += self._follow_many(server, client)
            else:
                statuses += self._follow()
        except (ClientError, ServerAddressError) as error:  # the latter: the embedded server would not start
            self.writer.notice(f"stream-logs: {error}")
            return error.status
        if self.stats is not None:
            self.writer.notice(self.stats.summary())
        return worst(statuses)

    def _follower(self, client: LogClient, job_id: str) -> Follower:
        options = self.options
        return Follower(
            client,
            job_id,
            history=not options.no_history and options.tail != 0,
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
            shown = [fmt.format_line(line, self.style, shown_ns) for line in batch]
        exported = None
        if self.writer.export_fd is not None:
            exported = shown if not self.colour else [fmt.format_line(line, self.plain, shown_ns) for line in batch]
        self.writer.log(shown, exported)

    def _follow(self) -> list[int]:
        """Show every follower's lines until all have ended; their exit statuses."""
        if self.options.no_follow:
            return [self._history_only(follower) for follower in self.followers]
        # One job: read the stream on this thread, no hand-off in the way of latency.
        follower = self.followers[0]
        for batch in follower.batches():
            self.show(batch)
        return [self._end(follower)]

    def _history(self, follower: Follower) -> list[LogLine]:
        from hodei_stream.stream.merge import history_of

        return history_of(follower, self.keep if self.tail_here else None, self.options.tail)

    def _follow_many(self, server: Server, client: LogClient) -> list[int]:
        """Several jobs, or jobs chosen by what they are, or a time to stop at: histories
        merged by time, then live lines, jobs joining as they are found; the exit statuses."""
        from hodei_stream.stream.merge import Gathering, merged  # here: one job is followed without threads

        options = self.options
        finder: JobFinder | None = None
        polled: Polled | None = None
        labels: Labels | None = None
        if self.prefix == "name" or options.selects:
            from hodei_stream.stream import selection  # here: only jobs chosen or labelled by name need it

            jobs = selection.JobsClient(server)
            ids = [follower.job_id for follower in self.followers]
            by_name = self.prefix == "name"
            labels = selection.Labels(by_name, self.style.labels)
            labels.give([selection.Found(job_id, jobs.definition(job_id).name if by_name else "") for job_id in ids])
            if options.selects:
                finder = selection.JobFinder(jobs, selection.Selector.of(options), known=ids)
                found, polled = finder.poll()
                labels.give(found)
                for job in found:
                    self._join(job, client)
        with_history = not options.no_history and options.tail != 0
        if with_history:
            self.show(merged(self._history(follower) for follower in self.followers))
        if options.no_follow or (options.until is not None and options.until <= time.time_ns()):
            if finder is not None:
                finder.stop()
            return [self._stop_here(follower, "history shown") for follower in self.followers]
        gathering = Gathering()
        for follower in self.followers:
            gathering.follow(follower)
        if finder is not None:
            finder.watch(gathering.put)
        try:
            return self._gather(gathering, client, finder, polled, labels, with_history)
        finally:
            if finder is not None:
                finder.stop()

    def _gather(
        self,
        gathering: Gathering,
        client: LogClient,
        finder: JobFinder | None,
        polled: Polled | None,
        labels: Labels | None,
        with_history: bool,
    ) -> list[int]:
        """Show what the followers and the finder bring until every job ended (ids only), no
        matching job is left (--until-done), the --until time came, or forever (selectors)."""
        from hodei_stream.stream.merge import Ended, Lines
        from hodei_stream.stream.selection import CannotList, Found, Polled

        options = self.options
        statuses: list[int] = []
        ended: set[str] = set()
        warned = False
        while True:
            if gathering.running == 0 and (
                finder is None or (options.until_done and polled is not None and polled.active <= ended)
            ):
                return statuses
            timeout_s = None if options.until is None else max(0.0, (options.until - time.time_ns()) / 1e9)
            item = gathering.next(timeout_s)
            if item is None:  # the --until time came
                while isinstance(item := gathering.next(0), Lines):
                    self.show(item.batch)
                still = [follower for follower in self.followers if follower.job_id not in ended]
                for follower in still:
                    follower.cancel()
                return statuses + [self._stop_here(follower, "--until reached") for follower in still]
            if isinstance(item, Lines):
                self.show(item.batch)
            elif isinstance(item, Ended):
                ended.add(item.follower.job_id)
                if isinstance(item.error, ClientError):
                    self.writer.notice(f"stream-logs: {item.error}")
                    statuses.append(item.error.status)
                elif item.error is not None:
                    raise item.error
                else:
                    statuses.append(self._end(item.follower))
            elif isinstance(item, Found):
                assert labels is not None, "jobs are found only with labels to give"
                labels.give([item])
                gathering.follow(self._join(item, client), self._history if with_history else None)
            elif isinstance(item, Polled):
                polled, warned = item, False
            elif isinstance(item, CannotList):  # jobs were queued on a server that cannot list them
                self.writer.notice(f"stream-logs: {item}")
                for follower in self.followers:
                    follower.cancel()
                return [*statuses, item.status]
            elif isinstance(item, ClientError) and not warned:  # the next round may list them again
                self.writer.notice(f"⚠️  {item}; trying again")
                warned = True

    def _join(self, job: Found, client: LogClient) -> Follower:
        """A job a selector found: announced, and a follower for it among the others."""
        follower = self._follower(client, job.job_id)
        self.followers.append(follower)
        if not self.options.quiet:
            self.writer.notice(fmt.format_joined(job.job_id, self._label(job.job_id), self.colour_err))
        return follower

    def _label(self, job_id: str) -> str:
        return self.style.labels.get(job_id) or fmt.job_label(job_id)

    def _history_only(self, follower: Follower) -> int:
        if self.options.tail:
            self.show(
                list(deque((line for batch in follower.history_batches() for line in batch), maxlen=self.options.tail))
            )
        else:
            for batch in follower.history_batches():
                self.show(batch)
        return self._stop_here(follower, "history shown")

    def _stop_here(self, follower: Follower, how: str) -> int:
        """The end line of a job no longer followed: its final status, or 5 (it goes on)."""
        job = follower.client.get_job(follower.job_id)
        follower.final = job
        if job.status in FINAL_STATUSES:
            return self._end(follower, how=how)
        self._end(follower, how=f"{how} (the job goes on)")
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
            label = self._label(follower.job_id) if self.style.job_labels else ""
            self.writer.notice(fmt.format_ending(ending, self.colour_err, label=label))
        if job.status == JOB_STATUS_COMPLETED:
            return ExitStatus.OK
        return ExitStatus.JOB_FAILED
