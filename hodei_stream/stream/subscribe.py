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
  before the job did is treated like a dropped connection;
- when the embedded server is gone, it starts it again (``endpoint.restart_if_gone``).

The back-off is honest: only a call that delivered a new line, ended cleanly or stayed up a
while (``STABLE_AFTER_S``) counts as a working connection, so a server or proxy that answers
and then fails every call (HTTP 502, INTERNAL after the history) meets a growing delay and
``--reconnect-timeout``.  Which failures are retried is ``RETRYABLE`` (the README's table).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

from hodei_stream.api import FINAL_STATUSES
from hodei_stream.endpoint import (
    RESTARTED_NOTICE,
    UNARY_TIMEOUT_S,
    Server,
    ServerAddressError,
    restart_if_gone,
)
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.records import EXACT_SEQUENCES_HEADER, LogLine
from hodei_stream.state_folder import is_answering
from hodei_stream.stream import messages
from hodei_stream.stream.messages import DecodeError, Job
from hodei_stream.stream.wire import Call, CallError

GET_LOGS_PAGE = 1000
# gRPC status codes worth a reconnect: the failure may pass (the README's retry table says
# why for each).  Every other code (UNIMPLEMENTED, INVALID_ARGUMENT, NOT_FOUND,
# PERMISSION_DENIED, UNAUTHENTICATED, FAILED_PRECONDITION, OUT_OF_RANGE, DATA_LOSS,
# ALREADY_EXISTS) gets the same answer however often it is asked: the user hears it at once.
RETRYABLE = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "RESOURCE_EXHAUSTED", "ABORTED", "CANCELLED"}
)
# A stream that stayed open this long before it failed was a working connection (a proxy
# that ends idle streams after a minute), not a server failing every call.
STABLE_AFTER_S = 10.0
JITTER = 0.2  # each delay is drawn within ±20% so that many followers do not retry in step
# How many recent lines are remembered to recognise a repeat from a server without exact
# sequences (e.g. history sent twice).
SEEN_WINDOW = 20_000


class ReconnectPolicy(NamedTuple):  # not a dataclass: ``dataclasses`` costs ~10 ms of start-up
    enabled: bool = True
    give_up_after_s: float = 60.0  # without a working connection
    first_delay_s: float = 0.1  # doubled after each failed attempt, up to max_delay_s
    max_delay_s: float = 5.0


DEFAULT_RECONNECT = ReconnectPolicy()
Decoded = TypeVar("Decoded")


class CallFailed(ClientError):
    """A failed unary call, in the user's words, that keeps its gRPC status code name (to
    decide whether it is worth another try)."""

    def __init__(self, error: ClientError, code: str) -> None:
        super().__init__(str(error), error.status)
        self.code = code


class LogClient:
    """GetJob, GetLogs and SubscribeLogs on ``server``, each call on a connection of its own."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def _unary(self, method: str, request: bytes, decode: Callable[[bytes], Decoded], job_id: str) -> Decoded:
        what = method.rpartition("/")[2]
        try:
            answer = Call(
                self.server.target,
                method,
                request,
                timeout=UNARY_TIMEOUT_S,
                settings=self.server.settings,
            ).unary()
            try:
                return decode(answer)
            except DecodeError as error:  # the server's fault, as grpcio would say it
                raise CallError("INTERNAL", f"an answer that does not decode ({error})") from None
        except CallError as error:
            raise CallFailed(
                self.server.failure(error.code, error.details, f"{what} {job_id}", job_id), error.code
            ) from None

    def get_job(self, job_id: str) -> Job:
        return self._unary(
            "/hodei.JobExecutionService/GetJob", messages.encode_get_job(job_id), messages.decode_job, job_id
        )

    def get_logs(self, job_id: str, since_sequence: int = 0, limit: int = GET_LOGS_PAGE) -> tuple[list[LogLine], bool]:
        """A page of the job's lines after ``since_sequence``, and whether more follow."""
        request = messages.encode_get_logs(job_id, since_sequence, limit)
        return self._unary("/hodei.LogStreamService/GetLogs", request, messages.decode_get_logs, job_id)

    def subscribe(self, job_id: str, include_history: bool, tail_lines: int = 0) -> Call:
        """Start SubscribeLogs; ``CallError`` from here on as the stream is read."""
        return Call(
            self.server.target,
            "/hodei.LogStreamService/SubscribeLogs",
            messages.encode_subscribe(job_id, include_history, tail_lines),
            settings=self.server.settings,
        )


class SeenLines:
    """Whether a line was already handed on.

    With exact sequences a line is new when its sequence is past the last one: constant
    time and memory, whatever the overlap after a reconnect.  Without them (the platform),
    a line is new unless the same entry (capture time, stream, text, sequence) was handed on
    among the last ``SEEN_WINDOW``: history sent twice is shown once, while lines that only
    look alike (same instant, same text, sequences 1..5) are each shown.  The platform also
    stamps live lines with the job's latest sequence instead of their own, so a live line
    that a GetLogs fill already brought (under its true sequence) is recognised by content:
    each line a fill handed on excuses one later look-alike from the subscription.
    """

    def __init__(self) -> None:
        self.exact = False
        self.last_sequence = 0  # the highest sequence handed on; 0 before the first line
        self._recent: deque[tuple[int, bool, str, int]] = deque()
        self._recent_set: set[tuple[int, bool, str, int]] = set()
        # Lines of the latest fill not yet met again live (the last SEEN_WINDOW of them).
        self._filled: Counter[tuple[int, bool, str]] = Counter()
        self._filled_order: deque[tuple[int, bool, str]] = deque()

    def is_new(self, line: LogLine, filled: bool = False) -> bool:
        """``filled``: the line comes from a GetLogs fill (under its true sequence)."""
        if self.exact:
            return line.sequence > self.last_sequence
        if (line.captured_ns, line.is_stderr, line.text, line.sequence) in self._recent_set:
            return False
        look = (line.captured_ns, line.is_stderr, line.text)
        if not filled and self._filled[look]:
            self._filled[look] -= 1
            return False
        return True

    def add(self, line: LogLine, filled: bool = False) -> None:
        if line.sequence > self.last_sequence:
            self.last_sequence = line.sequence
        if not self.exact:
            identity = (line.captured_ns, line.is_stderr, line.text, line.sequence)
            self._recent.append(identity)
            self._recent_set.add(identity)
            if len(self._recent) > SEEN_WINDOW:
                self._recent_set.discard(self._recent.popleft())
            if filled:
                look = identity[:3]
                self._filled[look] += 1
                self._filled_order.append(look)
                if len(self._filled_order) > SEEN_WINDOW:
                    oldest = self._filled_order.popleft()
                    if self._filled[oldest]:
                        self._filled[oldest] -= 1

    def start_fill(self) -> None:
        """A GetLogs fill begins: look-alikes of an earlier fill are no longer expected."""
        self._filled.clear()
        self._filled_order.clear()


class Follower:
    """One job's log, followed to its end."""

    def __init__(
        self,
        client: LogClient,
        job_id: str,
        *,
        history: bool = True,
        tail: int = 0,
        reconnect: ReconnectPolicy = DEFAULT_RECONNECT,
        notice: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.history = history
        self.tail = tail
        self.reconnect = reconnect
        self.notice = notice
        self.seen = SeenLines()
        self.final: Job | None = None
        self._call: Call | None = None
        self._progress = False  # the current attempt handed on a new line
        self._ended_cleanly = False  # the current attempt's stream ended with status OK
        self._cancelled = False

    def cancel(self) -> None:
        """Stop the stream from another thread (Ctrl+C while following several jobs)."""
        self._cancelled = True
        if self._call is not None:
            self._call.close()

    def batches(self) -> Iterator[list[LogLine]]:
        resuming = False
        policy = self.reconnect
        lost_since: float | None = None  # when the connection last stopped working
        delay = policy.first_delay_s
        while True:
            self._progress = False
            attempt_started = time.monotonic()
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
                code = error.code
                failure = self.client.server.failure(code, error.details, f"following job {self.job_id}")
            except CallFailed as error:  # GetJob / GetLogs, already in the user's words
                code, failure = error.code, error
            except ClientError as error:  # the stream ended before the job: as if the connection dropped
                code, failure = "UNAVAILABLE", error
            retryable = code in RETRYABLE and not self._cancelled
            now = time.monotonic()
            if self._progress or self._ended_cleanly or now - attempt_started >= STABLE_AFTER_S:
                lost_since = None  # a new outage: the limit starts again
                if self._progress:
                    delay = policy.first_delay_s
            lost_since = lost_since or now
            if not (retryable and policy.enabled):
                raise failure
            if code == "UNAVAILABLE" and self._restart_if_gone():
                self.notice(RESTARTED_NOTICE)
                lost_since, delay, resuming = None, policy.first_delay_s, True
                continue
            left = lost_since + policy.give_up_after_s - now
            if left <= 0:
                raise failure
            import random  # here: only a reconnect needs it (start-up time)

            wait = min(delay * random.uniform(1 - JITTER, 1 + JITTER), left)
            # A killed embedded server may still hold its socket for a moment: the first
            # retry tells whether it is gone (and started again) before the user is told; and
            # one that answers again (another command of the user's started it) is no news.
            server = self.client.server
            if not (server.embedded and (lost_since == now or is_answering(server.target))):
                self.notice(f"⚠️  {failure}; reconnecting in {wait:.1f}s")
            time.sleep(wait)
            delay = min(delay * 2, policy.max_delay_s)
            resuming = True

    def _restart_if_gone(self) -> bool:
        try:
            return restart_if_gone(self.client.server)
        except ServerAddressError as error:  # it would not start: the user's to see
            raise ClientError(str(error), error.status) from None

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
            call = self.client.subscribe(self.job_id, include_history=False)
        else:
            call = self.client.subscribe(self.job_id, include_history=self.history, tail_lines=self.tail)
        self._ended_cleanly = False
        self._call = call
        self.seen.exact = EXACT_SEQUENCES_HEADER in call.initial_metadata()
        if resuming and self._resume_point_known:
            yield from self._fill(upto=None)
        seen = self.seen
        decode = messages.decode_entry
        for received in call.batches():
            batch: list[LogLine] = []
            for message in received:
                try:
                    line = decode(message)
                except DecodeError as error:  # the server's fault: INTERNAL, as grpcio says it
                    call.close()
                    raise CallError("INTERNAL", f"a log entry that does not decode ({error})") from None
                # The common case, once per line: exact sequences, the next one.  What
                # SeenLines.is_new and .add would decide, without their two calls.
                if seen.exact and line.sequence == seen.last_sequence + 1:
                    seen.last_sequence = line.sequence
                    batch.append(line)
                    continue
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
                self._progress = True
                yield batch
        self._ended_cleanly = True

    def _fill(self, upto: int | None) -> Iterator[list[LogLine]]:
        """Lines after the last sequence (up to ``upto``) from GetLogs, a page at a time."""
        seen = self.seen
        seen.start_fill()
        since = seen.last_sequence
        while upto is None or since < upto:
            entries, has_more = self.client.get_logs(self.job_id, since_sequence=since, limit=GET_LOGS_PAGE)
            before = since
            batch: list[LogLine] = []
            for line in entries:
                if line.sequence <= since or (upto is not None and line.sequence > upto):
                    continue
                since = line.sequence
                if seen.is_new(line, filled=True):
                    seen.add(line, filled=True)
                    batch.append(line)
            if batch:
                self._progress = True
                yield batch
            # A server whose history lacks the gap (or whose sequences are not sane) makes
            # no progress: go on with what we have rather than ask forever.
            if not has_more or since == before:
                return
