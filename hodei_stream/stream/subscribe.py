"""Follow one job's log over gRPC and hand on each line once, in order, as a ``LogLine``.

``LogClient`` makes the three calls the streamer needs (GetJob, GetLogs, SubscribeLogs)
over ``wire.py``; failures come out as ``ClientError`` in the user's words.

``Follower.batches()`` subscribes (SubscribeLogs) and yields records as they arrive, in
batches of those that arrived together (so that they can be written together, at once).  It also
makes the stream whole when the wire is not:

- a line already handed on is dropped (``SeenLines``); from a server that promises exact
  sequences, a gap (the sequence jumps ahead) is filled with GetLogs before the line that
  revealed it;
- from a server that does not (the platform), lines are taken in arrival order and told
  apart by content (``ContentPass``); a subscription without headers in time, or stuck
  while GetLogs holds newer lines, gives way to polling GetLogs until the job ends;
- when the connection drops, it reconnects with back-off and resumes after the last line
  shown: subscribe to live lines first, then fill what was missed with GetLogs, dropping
  whatever both deliver; a server that asked for fewer pings is no outage to report;
- when the stream ends it asks GetJob for the final state (``final``); a stream that ended
  before the job did is treated like a dropped connection;
- when the embedded server is gone, it starts it again (``endpoint.restart_if_gone``).

``Follower.history_batches()`` is the log so far without following (--no-follow): one
subscription up to where the server says its history ends, or GetLogs.

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
from hodei_stream.records import EXACT_SEQUENCES_HEADER, HISTORY_LINES_HEADER, LogLine
from hodei_stream.state_folder import is_answering
from hodei_stream.stream import messages
from hodei_stream.stream.messages import DecodeError, Job
from hodei_stream.stream.wire import Call, CallError

GET_LOGS_PAGE_LINES = 1000
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
# A subscription that sends no response headers within this long is given up for GetLogs.
HEADERS_WITHIN_S = 2.0
# Silence on a subscription to a server without exact sequences after which GetJob and
# GetLogs are asked whether the job ended or the stream is stuck.
WATCHDOG_S = 1.0
# How often GetLogs is asked once the subscription is given up: the platform's worker sends
# its lines every 250 ms.
POLL_INTERVAL_S = 0.25
ContentKey = tuple[int, bool, str]  # a line's capture time (ns), whether on stderr, its text


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

    def get_logs(
        self, job_id: str, since_sequence: int = 0, limit: int = GET_LOGS_PAGE_LINES
    ) -> tuple[list[LogLine], bool]:
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
            # Entries read in one pass over the received bytes; one that does not decode is the
            # server's fault: the call fails INTERNAL, as grpcio says it.
            decode=messages.decode_entries,
        )


def content_key(line: LogLine) -> ContentKey:
    return (line.captured_ns, line.is_stderr, line.text)


class SeenLines:
    """Whether a line was already handed on.

    With exact sequences a line is new when its sequence is past the last one: constant
    time and memory, whatever the overlap after a reconnect.  Without them (the platform),
    sequences say nothing and lines are recognised by content (capture time, stream, text):
    ``new_pass()`` for each source that goes through the log in order (a subscription, a
    round of GetLogs), and its ``is_new`` per line.
    """

    def __init__(self) -> None:
        self.exact = False
        # Exact: the highest sequence handed on.  Otherwise the highest true sequence seen in
        # GetLogs (the platform numbers stored lines truly): where the next round resumes.
        self.last_sequence = 0
        # Without exact sequences: the last line handed on came from GetLogs, at
        # ``last_sequence``, so the lines GetLogs has after it are all new.
        self.at_last_sequence = False
        self.shown = 0  # lines handed on by content (without exact sequences)
        self.last_key: ContentKey | None = None
        # How often each of the last SEEN_WINDOW keys handed on was handed on.
        self._times: Counter[ContentKey] = Counter()
        self._order: deque[ContentKey] = deque()

    def is_new(self, line: LogLine) -> bool:
        """With exact sequences only."""
        return line.sequence > self.last_sequence

    def add(self, line: LogLine) -> None:
        """With exact sequences only."""
        if line.sequence > self.last_sequence:
            self.last_sequence = line.sequence

    def new_pass(self) -> ContentPass:
        return ContentPass(self)

    def times_shown(self, key: ContentKey) -> int:
        return self._times[key]

    def remember(self, key: ContentKey) -> None:
        self.shown += 1
        self.last_key = key
        self._times[key] += 1
        self._order.append(key)
        if len(self._order) > SEEN_WINDOW:
            oldest = self._order.popleft()
            self._times[oldest] -= 1
            if not self._times[oldest]:
                del self._times[oldest]


class ContentPass:
    """One source's way through the job's log, deduped by content against what was shown.

    A source repeats what was shown (the platform sends its whole buffer again after the
    history; GetLogs overlaps a subscription) as a run of the same lines in the same order.
    Lines that only look alike (one instant, one text: a job that printed "retrying" five
    times in one write) come one after another: a run of one key is new beyond the number
    of times that key was shown before the run began, so each look-alike is shown as often
    as the job wrote it, and a repeat of all of them adds none.

    One subscription to the platform is two sources in one: the history, with true numbers,
    then the whole buffer again, each copy numbered with the job's count.  Where the history
    ends with the line the buffer starts with (a buffer of one line, or of look-alikes only),
    the two would make one run.  The numbers tell them apart: they rise through the history
    and the live lines, and the first number that does not rise is the first copy, which
    starts a run of its own.  (Lines forwarded after the job's end are numbered 0 and say
    nothing.)
    """

    def __init__(self, seen: SeenLines) -> None:
        self.seen = seen
        self._run_key: ContentKey | None = None
        self._run_shown_before = 0
        self._run_length = 0
        self._last_sequence = 0  # the number the last line carried (0: none yet, or no number)
        self._copying = False  # the last number did not rise: copies of the buffer go on

    def is_new(self, line: LogLine) -> bool:
        """Whether ``line`` is new; if so, it counts as handed on."""
        key = content_key(line)
        first_copy = False
        if line.sequence:
            rose = line.sequence > self._last_sequence
            first_copy = not rose and not self._copying
            self._copying, self._last_sequence = not rose, line.sequence
        if key == self._run_key and not first_copy:
            self._run_length += 1
        else:
            self._run_key, self._run_shown_before, self._run_length = key, self.seen.times_shown(key), 1
        if self._run_length <= self._run_shown_before:
            return False
        self.seen.remember(key)
        return True


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
        self._polling = False  # the subscription was given up for GetLogs (see _watch_inexact)
        self._caught_up = False  # a round of GetLogs has placed us in the log

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
            pings_refused = False
            try:
                if not self._polling:
                    yield from self._one_subscription(resuming)
                if self._polling:
                    yield from self._poll()
                if self.final is not None:
                    return
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
                pings_refused = self._call is not None and self._call.pings_refused
            except CallFailed as error:  # GetJob / GetLogs, already in the user's words
                code, failure = error.code, error
            except ClientError as error:  # the stream ended before the job: as if the connection dropped
                code, failure = "UNAVAILABLE", error
            retryable = code in RETRYABLE and not self._cancelled
            now = time.monotonic()
            if self._progress or self._ended_cleanly or pings_refused or now - attempt_started >= STABLE_AFTER_S:
                lost_since = None  # a new outage: the limit starts again
                if self._progress:
                    delay = policy.first_delay_s
            lost_since = lost_since or now
            if not (retryable and policy.enabled):
                raise failure
            if code == "UNAVAILABLE" and not pings_refused and self._restart_if_gone():
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
            # A server that found our keepalive pings too frequent is there all along: the
            # next connection pings less often (wire.py), and the user hears nothing of it.
            server = self.client.server
            if not pings_refused and not (server.embedded and (lost_since == now or is_answering(server.target))):
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
        """Whether "everything after the last line shown" is what the user asked for: not so
        before the first line of --no-history or --tail, where it would be the whole log."""
        return self.seen.last_sequence > 0 or self.seen.shown > 0 or self._caught_up or (self.history and not self.tail)

    def history_batches(self) -> Iterator[list[LogLine]]:
        """The job's lines so far (the last ``tail`` with --tail N), without following
        (--no-follow), by the cheapest way the server allows.

        A server that says where a subscription's history ends (ours) streams it at
        following speed, only the last N asked for, and the call is closed there, whether
        the job runs on or not: the dedupe is one number, the cost that of the lines shown.
        Any other server is paged through GetLogs.  A first GetLogs of one line that says no
        more follow (the platform never says so: it answers the last ``limit`` lines, and a
        subscription to it may hang) goes there without subscribing at all.
        """
        if not self.history:
            return
        if not self.client.server.embedded:
            _, has_more = self.client.get_logs(self.job_id, since_sequence=0, limit=1)
            if not has_more:
                yield from self._fill(upto=None)
                return
        history_lines = ""
        try:
            call = self.client.subscribe(self.job_id, include_history=True, tail_lines=self.tail)
            self._call = call
            if self.client.server.embedded or call.answered_within(HEADERS_WITHIN_S):
                metadata = call.initial_metadata()
                self.seen.exact = EXACT_SEQUENCES_HEADER in metadata
                history_lines = dict(metadata).get(HISTORY_LINES_HEADER, "")
        except CallError:
            pass  # GetLogs says it in the user's words, or does without the subscription
        if not (self.seen.exact and history_lines.isdigit()):
            if self._call is not None:
                self._call.close()
            yield from self._fill(upto=None)
            return
        upto = int(history_lines)
        try:
            yield from self._exact_batches(call, upto)
        except CallError:
            # What the stream did not bring, GetLogs does (as the user's words if it fails too).
            yield from self._fill(upto=upto)

    def _one_subscription(self, resuming: bool) -> Iterator[list[LogLine]]:
        if resuming:
            # Live lines first, so nothing written from now on is missed; GetLogs fills what
            # came while we were away; SeenLines drops what both deliver.
            call = self.client.subscribe(self.job_id, include_history=False)
        else:
            call = self.client.subscribe(self.job_id, include_history=self.history, tail_lines=self.tail)
        self._ended_cleanly = False
        self._call = call
        # Our own server, or one that promised exact sequences before, answers at once
        # (however busy, it is waited for as always).  The platform holds a call for as
        # long as the job has more than 100 lines buffered, and with it the job's buffer
        # lock, which stalls the job's log intake: close it before anything else, and read
        # GetLogs instead.
        trusted = self.client.server.embedded or self.seen.exact
        if not trusted and not call.answered_within(HEADERS_WITHIN_S):
            call.close()
            self._polling = True
            return
        self.seen.exact = EXACT_SEQUENCES_HEADER in call.initial_metadata()
        if resuming and self._resume_point_known:
            yield from self._fill(upto=None)
        elif not self.seen.exact and not self._resume_point_known:
            # --tail N or --no-history: the platform sends its whole buffer after the history
            # whatever was asked.  A round of GetLogs shows the last N lines (or none) and
            # knows the rest, so that the subscription's copy of them is not shown.
            yield from self._fill(upto=None)
        if not self.seen.exact:
            yield from self._watch_inexact(call)
            return
        yield from self._exact_batches(call)
        self._ended_cleanly = True

    def _exact_batches(self, call: Call, upto: int | None = None) -> Iterator[list[LogLine]]:
        """A subscription's lines from a server with exact sequences, each once, gaps filled
        by GetLogs; up to sequence ``upto`` (then the call is closed), or to the stream's end."""
        seen = self.seen
        if upto is not None and seen.last_sequence >= upto:
            call.close()
            return
        received: list[LogLine]
        for received in call.message_batches():
            batch: list[LogLine] = []
            for line in received:
                # The common case, once per line: exact sequences, the next one.  What
                # SeenLines.is_new and .add would decide, without their two calls.
                if line.sequence == seen.last_sequence + 1:
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
            if upto is not None and seen.last_sequence >= upto:
                call.close()
                batch = [line for line in batch if line.sequence <= upto]
                if batch:
                    self._progress = True
                    yield batch
                return
            if batch:
                self._progress = True
                yield batch

    def _watch_inexact(self, call: Call) -> Iterator[list[LogLine]]:
        """A subscription to a server without exact sequences (the platform): lines in the
        order they arrive, each once by content, no gap filling by sequence.

        A watchdog looks behind a silence (``WATCHDOG_S`` without a byte): a job that has
        ended ends the follow (the platform never ends a subscription made after a job's
        end), and a line on the server that the stream has not brought by the next tick
        means the stream is stuck (a path gone silent, the platform's stalled forwarding):
        the follow goes on by GetLogs alone.
        """
        source = self.seen.new_pass()
        suspect: ContentKey | None = None  # a line the server held at the last tick that we had not shown
        for received in call.message_batches(idle_s=WATCHDOG_S):
            if not received:
                job = self.client.get_job(self.job_id)
                if job.status in FINAL_STATUSES:
                    call.close()
                    yield from self._last_round(job)
                    return
                newest = self._newest_held()
                if newest is None or newest == self.seen.last_key:
                    suspect = None
                elif suspect is not None and not self.seen.times_shown(suspect):
                    call.close()
                    self._polling = True
                    return
                else:  # it may be on its way to us: stuck only if it is still not here at the next tick
                    suspect = newest
                continue
            batch = [line for line in received if source.is_new(line)]
            if batch:
                self._progress = True
                self.seen.at_last_sequence = False
                yield batch
        self._ended_cleanly = True

    def _newest_held(self) -> ContentKey | None:
        """The newest line GetLogs holds (the platform answers the last ``limit``), if any."""
        entries, _ = self.client.get_logs(self.job_id, since_sequence=self.seen.last_sequence, limit=1)
        return content_key(entries[-1]) if entries else None

    def _poll(self) -> Iterator[list[LogLine]]:
        """The log by GetLogs alone, every ``POLL_INTERVAL_S``, until the job ends.

        The subscription is not tried again: on the platform it hangs again for as long as
        the job has more than 100 lines buffered, each time stalling the job's log intake,
        while polling as often as the platform's worker sends its lines (every 250 ms) shows
        them as soon as a subscription would.
        """
        while True:
            if self._cancelled:
                raise CallError("CANCELLED", "the follow was cancelled")
            job = self.client.get_job(self.job_id)
            if job.status in FINAL_STATUSES:
                yield from self._last_round(job)
                return
            yield from self._fill(upto=None)
            time.sleep(POLL_INTERVAL_S)

    def _last_round(self, job: Job) -> Iterator[list[LogLine]]:
        """What GetLogs still holds of a job that has ended; then the follow is over."""
        already_shown = self.seen.shown or self.seen.last_sequence
        brought = False
        for batch in self._fill(upto=None):
            brought = True
            yield batch
        if not (already_shown or brought) and self.history:
            self.notice(
                f"📭 the server holds no lines of job {self.job_id}: a Hodei platform drops a job's lines when it ends"
            )
        self.final = job

    def _fill(self, upto: int | None) -> Iterator[list[LogLine]]:
        """Lines after the last sequence (up to ``upto``) from GetLogs, a page at a time.

        Without exact sequences each line is also checked by content (a round of GetLogs
        overlaps what a subscription showed), and the first round, before any line was shown
        with --tail N or --no-history, hands on only its last N lines, or none.
        """
        seen = self.seen
        # Without exact sequences, GetLogs' own numbers are true: after a round, its lines
        # need no check by content until a subscription shows more.  (A check would take
        # the rest of a run of look-alikes that a round cut in two for repeats.)
        source = None if seen.exact or seen.at_last_sequence else seen.new_pass()
        keep_last = None if self._resume_point_known else self.tail if self.history else 0
        held: list[LogLine] = []
        since = seen.last_sequence
        while upto is None or since < upto:
            entries, has_more = self.client.get_logs(self.job_id, since_sequence=since, limit=GET_LOGS_PAGE_LINES)
            before = since
            batch: list[LogLine] = []
            for line in entries:
                if line.sequence <= since or (upto is not None and line.sequence > upto):
                    continue
                since = line.sequence
                if seen.exact:
                    seen.add(line)
                    batch.append(line)
                elif source is None:
                    seen.remember(content_key(line))
                    batch.append(line)
                elif source.is_new(line):
                    batch.append(line)
            if not seen.exact:
                seen.last_sequence = since
            if keep_last is not None:
                held = (held + batch)[-keep_last:] if keep_last else []
            elif batch:
                self._progress = True
                yield batch
            # The platform answers the LAST ``limit`` lines after ``since`` and never says
            # ``has_more``: a full page may have more behind it.  A server whose history
            # lacks the gap (or whose sequences are not sane) makes no progress: go on with
            # what we have rather than ask forever.
            if not (has_more or len(entries) >= GET_LOGS_PAGE_LINES) or since == before:
                break
        self._caught_up = True
        seen.at_last_sequence = not seen.exact
        if held:
            self._progress = True
            yield held
