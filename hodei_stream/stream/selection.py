"""Jobs chosen by what they are (--all, --name, --tag): which are there when stream-logs
starts, which are queued while it runs, and the label each one's lines carry.

ListJobs is polled every ``POLL_INTERVAL_S`` for a page of the newest ``POLL_PAGE_JOBS``
jobs: a job queued while watching joins within that interval (more than a page of jobs queued
within one interval would push some out of it unseen).  The server is sent what it can
filter (a single --name that is plain text, as its search term) and every filter is applied
here again; tags are not in ListJobs' summaries, so GetJob is asked once per new job, only
with --tag.  Every job is decided once: the first listing's jobs join when they are queued or
running; any job first listed later is new, and joins whatever its status (one that ran
within an interval has its whole log to show).

Imported only with --all/--name/--tag or --prefix name.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import NamedTuple

from hodei_stream.api import FINAL_STATUSES
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.stream import messages
from hodei_stream.stream.format import job_label
from hodei_stream.stream.options import Options
from hodei_stream.stream.subscribe import CallFailed, LogClient

POLL_INTERVAL_S = 0.5
POLL_PAGE_JOBS = 200
# What the user can do where the server cannot list jobs (a Hodei platform).
NO_SELECTORS_THERE = "--all, --name and --tag cannot work there; jobs named by id still work"


class CannotList(ClientError):
    """The server cannot list jobs (not a passing failure): selectors cannot work there."""


class JobsClient(LogClient):
    """The calls that choose jobs, besides those that follow them: ListJobs, and GetJob for
    a job's name and tags."""

    def list_jobs(self, limit: int, search_term: str) -> list[messages.Summary]:
        """The newest ``limit`` jobs; ``CannotList`` (exit 4) in one line where the server
        cannot list them, ``CallFailed`` for a failure that may pass."""
        request = messages.encode_list_jobs(limit, search_term)
        try:
            return self._unary("/hodei.JobExecutionService/ListJobs", request, messages.decode_list_jobs, "")
        except CallFailed as error:
            if error.code in ("UNAVAILABLE", "UNAUTHENTICATED", "UNIMPLEMENTED"):
                raise  # the same for every call: the server's own message says it best
            raise CannotList(
                f"the server at {self.server} could not list jobs ({error}); {NO_SELECTORS_THERE}",
                ExitStatus.UNREACHABLE,
            ) from None

    def definition(self, job_id: str) -> messages.Definition:
        request = messages.encode_get_job(job_id)
        return self._unary("/hodei.JobExecutionService/GetJob", request, messages.decode_definition, job_id)


class Found(NamedTuple):
    """A job that matches, to follow: its id and name."""

    job_id: str
    name: str


class Polled(NamedTuple):
    """One round of ListJobs: the matching jobs it listed as queued or running."""

    active: frozenset[str]


class Selector(NamedTuple):
    """--all, --name (any of them) and --tag (all of them), as stern combines its filters."""

    names: tuple[re.Pattern[str], ...]
    tags: frozenset[str]

    @classmethod
    def of(cls, options: Options) -> Selector:
        return cls(tuple(re.compile(pattern) for pattern in options.name), frozenset(options.tag))

    def search_term(self) -> str:
        """What the server may filter names by: one --name that is plain text, else nothing."""
        if len(self.names) == 1 and re.escape(self.names[0].pattern) == self.names[0].pattern:
            return self.names[0].pattern
        return ""

    def name_matches(self, name: str) -> bool:
        return not self.names or any(pattern.search(name) for pattern in self.names)


class JobFinder:
    """The jobs ``selector`` matches on ``server``, each reported once."""

    def __init__(self, client: JobsClient, selector: Selector, known: Iterable[str] = ()) -> None:
        self.client = client
        self.selector = selector
        self.decided: set[str] = set(known)  # every job id already judged (or named by id)
        self.matched: set[str] = set()  # those that matched
        self.first = True
        self.stopped = threading.Event()

    def poll(self) -> tuple[list[Found], Polled]:
        """One round: the new matching jobs (the first round: those queued or running), and
        every matching job still queued or running.  ``ClientError`` when ListJobs fails."""
        found: list[Found] = []
        active: set[str] = set()
        for summary in self.client.list_jobs(POLL_PAGE_JOBS, self.selector.search_term()):
            job_id = summary.job_id
            if not self.selector.name_matches(summary.name):
                self.decided.add(job_id)
                continue
            running = summary.status not in FINAL_STATUSES
            if job_id in self.decided:
                if running and job_id in self.matched:
                    active.add(job_id)
                continue
            self.decided.add(job_id)
            if (self.first and not running) or not self._tags_match(job_id):
                continue
            self.matched.add(job_id)
            found.append(Found(job_id, summary.name))
            if running:
                active.add(job_id)
        self.first = False
        return found, Polled(frozenset(active))

    def _tags_match(self, job_id: str) -> bool:
        if not self.selector.tags:
            return True
        try:
            definition = self.client.definition(job_id)
        except ClientError as error:
            if error.status != ExitStatus.NOT_FOUND:
                raise
            return False  # forgotten (retention) since ListJobs answered
        return self.selector.tags <= set(definition.tags)

    def watch(self, report: Callable[[Found | Polled | ClientError], None]) -> None:
        """Poll until ``stop()``, on a thread of its own, reporting each new job and round;
        a failed round is reported and the next one tried."""

        def rounds() -> None:
            while not self.stopped.wait(POLL_INTERVAL_S):
                try:
                    found, polled = self.poll()
                except ClientError as error:
                    report(error)
                    continue
                for job in found:
                    report(job)
                report(polled)

        threading.Thread(target=rounds, daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()


class Labels:
    """Each job's label: its name, with the short id where names repeat (``--prefix name``),
    or the short id (``--prefix id``).  A label, once given, stays."""

    def __init__(self, by_name: bool, labels: dict[str, str]) -> None:
        self.by_name = by_name
        self.labels = labels  # shared with the formatter's Style
        self.names_given: set[str] = set()

    def give(self, jobs: list[Found]) -> None:
        """Labels for jobs joining together: a name two of them share gets short ids on both."""
        names = [job.name for job in jobs]
        for job in jobs:
            if job.job_id in self.labels:
                continue
            if not self.by_name or not job.name:
                self.labels[job.job_id] = job_label(job.job_id)
            elif names.count(job.name) > 1 or job.name in self.names_given:
                self.labels[job.job_id] = f"{job.name}/{job_label(job.job_id)}"
            else:
                self.labels[job.job_id] = job.name
            self.names_given.add(job.name)
