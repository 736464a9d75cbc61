"""stream-logs in a CI, or with ``--junit``: the group around the jobs' lines, the end lines
and annotations after it, and the JUnit report.

One group holds the lines of the jobs followed (several jobs' lines interleave, so they
share it), titled with the banner; the end lines come after the group closes, so that each
job's final status, and on GitHub an error annotation per failed job, read without
unfolding anything.  Outside a CI and without ``--junit`` nothing here writes a byte.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from hodei_stream.ci.output import LAST_LINES, failure_text
from hodei_stream.records import LogLine
from hodei_stream.stream.format import Ending
from hodei_stream.stream.options import Options
from hodei_stream.stream.write import Writer


class EndedJob(NamedTuple):
    ending: Ending
    end_line: str | None  # None under --quiet


class JobsInCi:
    """What stream-logs adds in a CI and for ``--junit``, one run."""

    def __init__(self, options: Options, writer: Writer) -> None:
        self.writer = writer
        self.junit = options.junit
        self.grouped = writer.ci is not None and not options.no_ci_groups
        self.open = False
        self.ended: list[EndedJob] = []
        # Each job's last lines, for the failure in its testcase (only with --junit).
        self.keeps_lines = options.junit is not None
        self.last_lines: dict[str, deque[str]] = {}
        self.lost: dict[str, str] = {}  # why a job's follow ended before the job did

    def opened(self, job_ids: list[str]) -> None:
        """The jobs found are about to be followed: open their group."""
        if not self.grouped or not job_ids or self.writer.ci is None:
            return
        if len(job_ids) == 1:
            title = f"📡 Streaming logs for job: {job_ids[0]}"
        else:
            title = f"📡 Streaming logs for {len(job_ids)} jobs: {', '.join(job_ids)}"
        self.writer.commands(self.writer.ci.open_group(title))
        self.open = True

    def saw(self, batch: list[LogLine]) -> None:
        """Lines shown: each job's last ones kept for its testcase."""
        for line in batch:
            self.last_lines.setdefault(line.job_id, deque(maxlen=LAST_LINES)).append(line.text)

    def job_ended(self, ending: Ending, end_line: str | None) -> None:
        """A job ended: its end line now, or after the group when there is one."""
        self.ended.append(EndedJob(ending, end_line))
        if end_line is not None and not self.open:
            self.writer.notice(end_line)

    def job_lost(self, job_id: str, why: str) -> None:
        """A job's follow failed (the run goes on with the others): its testcase says why."""
        self.lost[job_id] = why

    def close(self, followed: Sequence[str] = (), cut_short: str = "") -> None:
        """The run is over (or was cut short, saying why): close the group, say how each job
        ended, report (``followed``: the jobs followed, ended or not)."""
        ci = self.writer.ci
        if self.open and ci is not None:
            self.open = False
            self.writer.commands(ci.close_group())
            for job in self.ended:
                if job.end_line is not None:
                    self.writer.notice(job.end_line)
            for job in self.ended:
                if job.ending.status != "COMPLETED":
                    self.writer.commands(ci.failure(f"job {job.ending.job_id}", failure_message(job.ending)))
        if self.junit is not None:
            self.write_report(self.junit, followed, cut_short)
            self.junit = None

    def write_report(self, path: str, followed: Sequence[str], cut_short: str) -> None:
        """A testcase per job that ended, and an error one per job followed that did not."""
        from hodei_stream.ci.junit import ReportCase, write_junit

        cases = [
            ReportCase(
                name=job.ending.job_id,
                classname="stream-logs",
                time_s=job.ending.duration_s or 0.0,
                failure=None if job.ending.status == "COMPLETED" else failure_message(job.ending),
                log_tail=tuple(self.last_lines.get(job.ending.job_id, ())),
            )
            for job in self.ended
        ]
        ended = {job.ending.job_id for job in self.ended}
        cases += [
            ReportCase(
                name=job_id,
                classname="stream-logs",
                time_s=0.0,
                error=f"not followed to its end: {self.lost.get(job_id) or cut_short or 'stream-logs stopped'}",
                log_tail=tuple(self.last_lines.get(job_id, ())),
            )
            for job_id in dict.fromkeys(followed)
            if job_id not in ended
        ]
        try:
            write_junit(path, "stream-logs", cases)
        except OSError as error:
            self.writer.notice(f"stream-logs: cannot write the JUnit report {path}: {error.strerror}")


def failure_message(ending: Ending) -> str:
    return failure_text(ending.status, ending.error_message, ending.exit_code, ending.job_id)
