"""stream-logs over several jobs, over jobs chosen by what they are (``selection.py``), or up
to an --until still to come: the histories merged by capture time (``merge.py``), then every
follower's live lines and the jobs the finder brings, until the watch ends.  The session it
belongs to shows the lines and writes the end lines."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ClientError
from hodei_stream.stream import format as fmt
from hodei_stream.stream.merge import Ended, Gathering, Lines, merged
from hodei_stream.stream.selection import CannotList, Found, JobFinder, JobsClient, Labels, Polled, Selector
from hodei_stream.stream.subscribe import Follower, LogClient

if TYPE_CHECKING:
    from hodei_stream.stream.session import Session


class ManyJobs:
    """One watch of several jobs, for ``session``, on ``server`` (``client``: its followers')."""

    def __init__(self, session: Session, server: Server, client: LogClient) -> None:
        self.session = session
        self.options = session.options
        self.server = server
        self.client = client

    def run(self) -> list[int]:
        """Several jobs, or jobs chosen by what they are, or a time to stop at: histories
        merged by time, then live lines, jobs joining as they are found; the exit statuses."""
        session, options = self.session, self.options
        finder: JobFinder | None = None
        polled: Polled | None = None
        labels: Labels | None = None
        if session.prefix == "name" or options.selects:
            jobs = JobsClient(self.server)
            ids = [follower.job_id for follower in session.followers]
            by_name = session.prefix == "name"
            labels = Labels(by_name, session.style.labels)
            labels.give([Found(job_id, jobs.definition(job_id).name if by_name else "") for job_id in ids])
            if options.selects:
                finder = JobFinder(jobs, Selector.of(options), known=ids)
                found, polled = finder.poll()
                labels.give(found)
                for job in found:
                    self._join(job)
                if not found and (options.no_follow or options.until_done) and not options.quiet:
                    session.writer.notice("stream-logs: no job running or queued matches")
        with_history = not options.no_history and options.tail != 0
        if with_history:
            session.show(merged(session.history(follower) for follower in session.followers))
        if options.no_follow or (options.until is not None and options.until <= time.time_ns()):
            if finder is not None:
                finder.stop()
            return [session.stop_here(follower, "history shown") for follower in session.followers]
        gathering = Gathering()
        for follower in session.followers:
            gathering.follow(follower)
        if finder is not None:
            finder.watch(gathering.put)
        try:
            return self._gather(gathering, finder, polled, labels, with_history)
        finally:
            if finder is not None:
                finder.stop()

    def _gather(
        self,
        gathering: Gathering,
        finder: JobFinder | None,
        polled: Polled | None,
        labels: Labels | None,
        with_history: bool,
    ) -> list[int]:
        """Show what the followers and the finder bring until every job ended (ids only), no
        matching job is left (--until-done), the --until time came, or forever (selectors)."""
        session, options = self.session, self.options
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
                    session.show(item.batch)
                still = [follower for follower in session.followers if follower.job_id not in ended]
                for follower in still:
                    follower.cancel()
                return statuses + [session.stop_here(follower, "--until reached") for follower in still]
            if isinstance(item, Lines):
                session.show(item.batch)
            elif isinstance(item, Ended):
                ended.add(item.follower.job_id)
                if isinstance(item.error, ClientError):
                    session.writer.notice(f"stream-logs: {item.error}")
                    session.in_ci.job_lost(item.follower.job_id, str(item.error))
                    statuses.append(item.error.status)
                elif item.error is not None:
                    raise item.error
                else:
                    statuses.append(session.end(item.follower))
            elif isinstance(item, Found):
                assert labels is not None, "jobs are found only with labels to give"
                labels.give([item])
                if with_history:
                    gathering.follow(self._join(item), session.history)
                else:  # queued since the watch began: all of its log is new (--no-history, --tail 0)
                    gathering.follow(self._join(item, whole_log=True))
            elif isinstance(item, Polled):
                polled, warned = item, False
            elif isinstance(item, CannotList):  # jobs were queued on a server that cannot list them
                session.writer.notice(f"stream-logs: {item}")
                for follower in session.followers:
                    follower.cancel()
                return [*statuses, item.status]
            elif isinstance(item, ClientError) and not warned:  # the next round may list them again
                session.writer.notice(f"⚠️  {item}; trying again")
                warned = True

    def _join(self, job: Found, whole_log: bool = False) -> Follower:
        """A job a selector found: announced, and a follower for it among the others."""
        session = self.session
        follower = session.follower_for(self.client, job.job_id, whole_log)
        session.followers.append(follower)
        if not self.options.quiet:
            session.writer.notice(fmt.format_joined(job.job_id, session.style.label(job.job_id), session.colour_err))
        return follower
