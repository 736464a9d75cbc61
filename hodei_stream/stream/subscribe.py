"""Follow one job's log over gRPC and hand on each line once, in order, as a ``LogLine``.

``LogClient`` makes the three calls the streamer needs (GetJob, GetLogs, SubscribeLogs)
over ``wire.py``; failures come out as ``ClientError`` in the user's words.

``Follower.batches()`` subscribes (SubscribeLogs) and yields records as they arrive, in
batches of those that arrived together (so that they can be written together, at once).  It also
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

from google.protobuf.message import Message

from hodei_stream.api import FINAL_STATUSES
from hodei_stream.endpoint import UNARY_TIMEOUT_S, Server
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import EXACT_SEQUENCES_HEADER, LogLine, from_entry
from hodei_stream.stream.wire import Call, CallError

GET_LOGS_PAGE = 1000
# Codes that mean "the connection or server went away", worth a reconnect.
RETRYABLE = frozenset({"UNAVAILABLE", "INTERNAL", "UNKNOWN"})
# How many recent lines are remembered to recognise a repeat from a server without exact
# sequences (e.g. history sent twice).
SEEN_WINDOW = 20_000


@dataclass(frozen=True)
class ReconnectPolicy:
    enabled: bool = True
    give_up_after_s: float = 60.0  # without a working connection
    first_delay_s: float = 0.1
    max_delay_s: float = 5.0


class LogClient:
    """GetJob, GetLogs and SubscribeLogs on ``server``, each call on a connection of its own."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def _unary(self, method: str, request: Message, response_type: type[Message], what: str, job_id: str) -> Message:
        try:
            answer = Call(self.server.target, method, request.SerializeToString(), timeout=UNARY_TIMEOUT_S).unary()
        except CallError as error:
            raise self.server.failure(error.code, error.details, f"{what} {job_id}", job_id) from None
        return response_type.FromString(answer)

    def get_job(self, job_id: str) -> pb.GetJobResponse:
        request = pb.GetJobRequest(job_id=pb.JobId(value=job_id))
        return self._unary("/hodei.JobExecutionService/GetJob", request, pb.GetJobResponse, "GetJob", job_id)

    def get_logs(self, job_id: str, since_sequence: int = 0, limit: int = GET_LOGS_PAGE) -> pb.GetLogsResponse:
        request = pb.GetLogsRequest(job_id=job_id, since_sequence=since_sequence, limit=limit)
        return self._unary("/hodei.LogStreamService/GetLogs", request, pb.GetLogsResponse, "GetLogs", job_id)

    def subscribe(self, request: pb.SubscribeLogsRequest) -> Call:
        """Start SubscribeLogs; ``CallError`` from here on as the stream is read."""
        return Call(self.server.target, "/hodei.LogStreamService/SubscribeLogs", request.SerializeToString())


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
        client: LogClient,
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
        self._call: Call | None = None
        self._connected = False  # the server answered since the last failure

    def cancel(self) -> None:
        """Stop the stream from another thread (Ctrl+C while following several jobs)."""
        if self._call is not None:
            self._call.close()

    def batches(self) -> Iterator[list[LogLine]]:
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
            except CallError as error:
                failure = self.client.server.failure(error.code, error.details, f"following job {self.job_id}")
                retryable = error.code in RETRYABLE
            except ClientError as error:  # from GetJob / GetLogs, already in the user's words
                failure, retryable = error, error.status == ExitStatus.UNREACHABLE
            now = time.monotonic()
            if self._connected:  # a new outage: the back-off and the limit start again
                self._connected, lost_since, delay = False, None, self.reconnect.first_delay_s
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

    def history_batches(self) -> Iterator[list[LogLine]]:
        """The job's lines so far, paged through GetLogs, without following (--no-follow)."""
        yield from self._fill(upto=None)

    def _one_subscription(self, resuming: bool) -> Iterator[list[LogLine]]:
        if resuming:
            # Live lines first, so nothing written from now on is missed; GetLogs fills what
            # came while we were away; SeenLines drops what both deliver.
            request = pb.SubscribeLogsRequest(job_id=self.job_id, include_history=False)
        else:
            request = pb.SubscribeLogsRequest(job_id=self.job_id, include_history=self.history, tail_lines=self.tail)
        self._call = call = self.client.subscribe(request)
        self.seen.exact = EXACT_SEQUENCES_HEADER in call.initial_metadata()
        self._connected = True
        if resuming and self._resume_point_known:
            yield from self._fill(upto=None)
        seen = self.seen
        parse = pb.JobLogEntry.FromString
        for messages in call.batches():
            batch: list[LogLine] = []
            for message in messages:
                line = from_entry(parse(message))
                if not seen.is_new(line):
                    continue
                if seen.last_sequence and line.sequence > seen.last_sequence + 1:
                    for page in self._fill(upto=line.sequence - 1):
                        batch += page
                    if not seen.is_new(line):  # the fill brought it already
                        continue
                seen.add(line)
                batch.append(line)
            if batch:
                yield batch

    def _fill(self, upto: int | None) -> Iterator[list[LogLine]]:
        """Lines after the last sequence (up to ``upto``) from GetLogs, a page at a time."""
        seen = self.seen
        since = seen.last_sequence
        while upto is None or since < upto:
            page = self.client.get_logs(self.job_id, since_sequence=since, limit=GET_LOGS_PAGE)
            before = since
            batch: list[LogLine] = []
            for entry in page.entries:
                if entry.sequence <= since or (upto is not None and entry.sequence > upto):
                    continue
                since = entry.sequence
                line = from_entry(entry)
                if seen.is_new(line):
                    seen.add(line)
                    batch.append(line)
            if batch:
                yield batch
            # A server whose history lacks the gap (or whose sequences are not sane) makes
            # no progress: go on with what we have rather than ask forever.
            if not page.has_more or since == before:
                return
