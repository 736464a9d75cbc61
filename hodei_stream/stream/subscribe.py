"""Follow one job's log over gRPC and hand on each line once, in order, as a ``LogLine``.

``Follower.lines()`` subscribes (SubscribeLogs) and yields records as they arrive.  It also
makes the stream whole when the wire is not:

- a line already handed on is dropped (``SeenLines``); a gap (the sequence jumps ahead) is
  filled with GetLogs before the line that revealed it;
- when the connection drops, it reconnects with back-off and resumes after the last
  sequence shown: subscribe to live lines first, then fill what was missed with GetLogs,
  dropping whatever both deliver;
- when the stream ends it asks GetJob for the final state (``final``); a stream that ended
  before the job did is treated like a dropped connection.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc

from hodei_stream.client import FINAL_STATUSES, ClientError, HodeiClient, client_error
from hodei_stream.exit_codes import ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import EXACT_SEQUENCES_HEADER, LogLine, from_entry

GET_LOGS_PAGE = 1000
# Codes that mean "the connection or server went away", worth a reconnect.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
# How many recent lines are remembered to recognise a repeat from a server without exact
# sequences (e.g. history sent twice).
SEEN_WINDOW = 20_000


@dataclass(frozen=True)
class ReconnectPolicy:
    enabled: bool = True
    give_up_after_s: float = 60.0  # without a working connection
    first_delay_s: float = 0.1
    max_delay_s: float = 5.0


class SeenLines:
    """Whether a line was already handed on.

    With exact sequences a line is new when its sequence is past the last one: constant
    time and memory, whatever the overlap after a reconnect.  Without them, a line is new
    unless the same line (capture time, stream, text) was handed on among the last
    ``SEEN_WINDOW``: a misnumbered live line is still shown, a repeated one is not.
    """

    def __init__(self) -> None:
        self.exact = False
        self.last_sequence = 0  # the highest sequence handed on; 0 before the first line
        self._recent: deque[tuple[int, bool, str]] = deque()
        self._recent_set: set[tuple[int, bool, str]] = set()

    def is_new(self, line: LogLine) -> bool:
        if self.exact:
            return line.sequence > self.last_sequence
        return (line.captured_ns, line.is_stderr, line.text) not in self._recent_set

    def add(self, line: LogLine) -> None:
        if line.sequence > self.last_sequence:
            self.last_sequence = line.sequence
        if not self.exact:
            identity = (line.captured_ns, line.is_stderr, line.text)
            self._recent.append(identity)
            self._recent_set.add(identity)
            if len(self._recent) > SEEN_WINDOW:
                self._recent_set.discard(self._recent.popleft())


class Follower:
    """One job's log, followed to its end."""

    def __init__(
        self,
        client: HodeiClient,
        job_id: str,
        *,
        history: bool = True,
        tail: int = 0,
        reconnect: ReconnectPolicy = ReconnectPolicy(),
        notice: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.history = history
        self.tail = tail
        self.reconnect = reconnect
        self.notice = notice
        self.seen = SeenLines()
        self.final: pb.GetJobResponse | None = None
        self._call: grpc.Call | None = None

    def cancel(self) -> None:
        """Stop the stream from another thread (Ctrl+C while following several jobs)."""
        if self._call is not None:
            self._call.cancel()

    def lines(self) -> Iterator[LogLine]:
        resuming = False
        lost_since: float | None = None
        delay = self.reconnect.first_delay_s
        while True:
            try:
                yield from self._one_subscription(resuming)
                job = self.client.get_job(self.job_id)
                if job.status not in FINAL_STATUSES:
                    raise ClientError(
                        f"the server ended the log stream of job {self.job_id} before the job ended",
                        ExitStatus.UNREACHABLE,
                    )
                # Lines stored after the stream closed (a platform that ends the stream on
                # the status change, before its last lines) still belong to the job.
                if self._resume_point_known:
                    yield from self._fill(upto=None)
                self.final = job
                return
            except grpc.RpcError as error:
                failure = client_error(error, self.client.server, f"following job {self.job_id}")
                retryable = isinstance(error, grpc.Call) and error.code() in RETRYABLE
            except ClientError as error:  # from GetJob / GetLogs, already in the user's words
                failure, retryable = error, error.status == ExitStatus.UNREACHABLE
            now = time.monotonic()
            lost_since = lost_since or now
            if not (retryable and self.reconnect.enabled and now - lost_since <= self.reconnect.give_up_after_s):
                raise failure
            self.notice(f"⚠️  {failure}; reconnecting in {delay:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, self.reconnect.max_delay_s)
            resuming = True

    @property
    def _resume_point_known(self) -> bool:
        """Whether "everything after the last sequence" is what the user asked for: not so
        before the first line of --no-history or --tail, where it would be the whole log."""
        return self.seen.last_sequence > 0 or (self.history and not self.tail)

    def history_lines(self) -> Iterator[LogLine]:
        """The job's lines so far, paged through GetLogs, without following (--no-follow)."""
        yield from self._fill(upto=None)

    def _one_subscription(self, resuming: bool) -> Iterator[LogLine]:
        if resuming:
            # Live lines first, so nothing written from now on is missed; GetLogs fills what
            # came while we were away; SeenLines drops what both deliver.
            request = pb.SubscribeLogsRequest(job_id=self.job_id, include_history=False)
        else:
            request = pb.SubscribeLogsRequest(job_id=self.job_id, include_history=self.history, tail_lines=self.tail)
        self._call = call = self.client.logs.SubscribeLogs(request)
        self.seen.exact = EXACT_SEQUENCES_HEADER in (call.initial_metadata() or ())
        if resuming and self._resume_point_known:
            yield from self._fill(upto=None)
        seen = self.seen
        for entry in call:
            line = from_entry(entry)
            if not seen.is_new(line):
                continue
            if seen.last_sequence and line.sequence > seen.last_sequence + 1:
                yield from self._fill(upto=line.sequence - 1)
                if not seen.is_new(line):  # the fill brought it already
                    continue
            seen.add(line)
            yield line

    def _fill(self, upto: int | None) -> Iterator[LogLine]:
        """Lines after the last sequence (up to ``upto``) from GetLogs, page by page."""
        seen = self.seen
        since = seen.last_sequence
        while upto is None or since < upto:
            page = self.client.get_logs(self.job_id, since_sequence=since, limit=GET_LOGS_PAGE)
            before = since
            for entry in page.entries:
                if entry.sequence <= since or (upto is not None and entry.sequence > upto):
                    continue
                since = entry.sequence
                line = from_entry(entry)
                if seen.is_new(line):
                    seen.add(line)
                    yield line
            # A server whose history lacks the gap (or whose sequences are not sane) makes
            # no progress: go on with what we have rather than ask forever.
            if not page.has_more or since == before:
                return
