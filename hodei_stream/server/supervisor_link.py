"""The supervisor's side of its link to the worker: the job's lines numbered, gathered into
batches, spooled and sent; the connection kept up across the server's restarts.

Every batch is appended to the job's spool file (``spool.JobSpool``) before it is sent.
Sending never blocks: the socket is non-blocking and what it does not take waits in a buffer
of at most ``OUTGOING_LIMIT_BYTES`` (plus one message); lines that find the buffer full stay
in the spool and are sent from there, in order, once the server reads again.  So a slow,
stopped (SIGSTOP) or vanished server never holds up the job's timeout or kill grace, nor the
reading of its output.  A server that went away is reconnected with back-off; the new one
answers ``HELLO`` with ``RESUME`` and the last sequence it stored, and gets every line after
it from the spool.
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from typing import TYPE_CHECKING

from hodei_stream.server import supervisor_protocol
from hodei_stream.server.supervisor_protocol import Cancel, Done, Exited, Hello, Received, RecordKind, Resume, Started

if TYPE_CHECKING:
    from collections.abc import Callable

    from hodei_stream.server.spool import JobSpool

# The server's messages are small; one read takes whatever has arrived.
RECEIVE_CHUNK = 1 << 16
# Reconnecting to a server that went away: the first retry after this long, then twice as
# long each time, up to the maximum (so a restarted server gets its jobs back within ~1 s).
RECONNECT_FIRST_S = 0.05
RECONNECT_MAX_S = 1.0
# How long a connected server may take to answer HELLO before we count it as away.
HANDSHAKE_TIMEOUT_S = 5.0
# Bytes waiting for a server that does not read (slow, stopped, gone) at most, beyond one
# message: further lines stay in the spool and follow from there once it reads again.
OUTGOING_LIMIT_BYTES = 2 * 1024 * 1024


class LogBatcher:
    """Holds line records (``supervisor_protocol.line_records``) until ``capacity`` are pending
    or the oldest waited ``flush_interval_s``."""

    def __init__(self, capacity: int, flush_interval_s: float) -> None:
        self.capacity = capacity
        self.flush_interval_s = flush_interval_s
        self.pending: list[bytes] = []
        self.oldest_at = 0.0

    def add(self, records: list[bytes], now: float) -> None:
        if records and not self.pending:
            self.oldest_at = now
        self.pending += records

    def due_in(self, now: float) -> float | None:
        """Seconds until a flush is due (0: now), None when nothing is pending."""
        if not self.pending:
            return None
        if len(self.pending) >= self.capacity:
            return 0.0
        return max(0.0, self.oldest_at + self.flush_interval_s - now)

    def take(self) -> list[bytes]:
        records, self.pending = self.pending, []
        return records


class WorkerLink:
    """The connection to the server's worker socket, and the job's lines and reports on their
    way through it.  Registered in the supervisor's ``selector`` with the data ``"server"``;
    ``on_stop`` is called with the reason when the server wants the job stopped."""

    def __init__(
        self,
        job_id: str,
        socket_path: str,
        spool: JobSpool,
        selector: selectors.BaseSelector,
        batcher: LogBatcher,
        on_stop: Callable[[str], None],
    ) -> None:
        self.job_id = job_id
        self.socket_path = socket_path
        self.spool = spool
        self.selector = selector
        self.batcher = batcher
        self.on_stop = on_stop
        self.next_sequence = 1
        # The server, when connected; else when to try again, with a delay that doubles.
        self.connection: socket.socket | None = None
        self.record_reader = supervisor_protocol.RecordReader()
        self.reconnect_at = 0.0
        self.reconnect_delay_s = RECONNECT_FIRST_S
        # Until the server answered HELLO with RESUME, nothing but HELLO goes out; a server
        # that does not answer by ``handshake_deadline`` counts as away.
        self.resumed = False
        self.handshake_deadline = 0.0
        # What the socket did not take yet (at most about ``OUTGOING_LIMIT_BYTES``), and the
        # last line in it or sent.  Lines that find it full stay in the spool only
        # (``behind``) and are sent from there once it has room, in order.
        self.outgoing = bytearray()
        self.watching_writes = False  # (the selector's EVENT_WRITE: only while some is left)
        self.queued_through = 0
        self.behind = False
        # Sent again on every reconnect, so a restarted server learns them too.
        self.started_report: Started | None = None
        self.exit_report: Exited | None = None
        self.exit_queued = False
        self.done = False  # the server has everything (or does not want the job)

    # Every write goes through the event loop: a server that is slow, stopped or gone never
    # holds up the job's timeout, the kill grace or the reading of its output.

    def connect(self) -> None:
        """One attempt to (re)connect: HELLO now; the server's RESUME arrives in the loop."""
        try:
            connection = supervisor_protocol.connect(self.socket_path)
        except OSError:
            self.retry_later()
            return
        self.connection, self.record_reader = connection, supervisor_protocol.RecordReader()
        self.resumed, self.exit_queued = False, False
        self.handshake_deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        self.outgoing.clear()
        self.watching_writes = False
        self.selector.register(connection, selectors.EVENT_READ, "server")
        self.queue(supervisor_protocol.encode_record(Hello(self.job_id, self.next_sequence - 1, os.getpid())))

    def on_resume(self, after_sequence: int) -> None:
        """The server stored every line up to ``after_sequence``: send what it lacks (from the
        spool), then go on live."""
        self.resumed = True
        self.reconnect_delay_s = RECONNECT_FIRST_S
        if self.started_report:
            self.queue(supervisor_protocol.encode_record(self.started_report))
        self.queued_through, self.behind = after_sequence, True
        self.catch_up()

    def retry_later(self) -> None:
        self.reconnect_at = time.monotonic() + self.reconnect_delay_s
        self.reconnect_delay_s = min(2 * self.reconnect_delay_s, RECONNECT_MAX_S)

    def disconnect(self) -> None:
        """The server went away: keep the job running and its lines spooled, and reconnect."""
        if self.connection is not None:
            self.selector.unregister(self.connection)
            self.connection.close()
            self.connection = None
            self.outgoing.clear()
            self.retry_later()

    def queue(self, message: bytes) -> None:
        """Send ``message`` (what the socket does not take now goes when it is writable)."""
        assert self.connection is not None
        was_empty = not self.outgoing
        self.outgoing += message
        if was_empty:
            self.write_out()

    def write_out(self) -> None:
        """Write what the socket takes without blocking; watch for writability while some is left."""
        assert self.connection is not None
        try:
            sent = self.connection.send(self.outgoing)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.disconnect()
            return
        del self.outgoing[:sent]
        if bool(self.outgoing) != self.watching_writes:
            self.watching_writes = bool(self.outgoing)
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.watching_writes else 0)
            self.selector.modify(self.connection, events, "server")

    def catch_up(self) -> None:
        """While behind: refill the outgoing buffer from the spool, in order; once level with
        the spool, go on live (and send the outcome, which follows the last line)."""
        while self.connection is not None and self.behind and len(self.outgoing) < OUTGOING_LIMIT_BYTES // 2:
            payload = next(self.spool.payloads_after(self.queued_through), None)
            if payload is None:
                self.behind = False
            else:
                self.queued_through = supervisor_protocol.last_sequence(payload)
                self.queue(supervisor_protocol.encode(RecordKind.LINES, payload))
        if self.connection is not None and not self.behind and self.exit_report and not self.exit_queued:
            self.exit_queued = True
            self.queue(supervisor_protocol.encode_record(self.exit_report))

    def add_lines(self, texts: list[str], is_stderr: bool) -> None:
        """Number lines just read (captured now) and hold them for the next batch."""
        if not texts:
            return
        records = supervisor_protocol.line_records(self.next_sequence, time.time_ns(), is_stderr, texts)
        self.next_sequence += len(records)
        self.batcher.add(records, time.monotonic())

    def flush(self) -> None:
        """Spool the pending lines, and send them unless the server is away or behind."""
        pending = self.batcher.take()
        # The pending lines are the last ones numbered: they end just before the next sequence.
        for records, first, last in supervisor_protocol.batch_records(pending, self.next_sequence - len(pending)):
            self.spool.append(records, first)
            if self.connection is None or not self.resumed or self.behind:
                continue  # spooled: sent after RESUME, or by catch_up
            if self.outgoing and len(self.outgoing) + len(records) > OUTGOING_LIMIT_BYTES:
                self.behind = True
                continue
            self.queued_through = last
            self.queue(supervisor_protocol.encode(RecordKind.LINES, records))

    def report_started(self, report: Started) -> None:
        self.started_report = report
        if self.connection is not None and self.resumed:
            self.queue(supervisor_protocol.encode_record(report))

    def report_exit(self, report: Exited) -> None:
        """The job's outcome: spooled at once (for a server that finds this supervisor gone),
        sent once every line went."""
        self.flush()
        self.spool.write_exit(report)
        self.exit_report = report
        if self.connection is not None and self.resumed:
            self.catch_up()

    def on_event(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE and self.connection is not None:
            self.write_out()
            self.catch_up()
        if mask & selectors.EVENT_READ and self.connection is not None:
            self.on_readable()

    def on_readable(self) -> None:
        assert self.connection is not None
        try:
            chunk = self.connection.recv(RECEIVE_CHUNK)
            received = self.record_reader.feed(chunk) if chunk else None
        except BlockingIOError:
            return
        except (OSError, ValueError):  # reset, or a message no server sends (too long, unknown, unreadable)
            received = None
        try:
            if received is not None:
                self.on_messages(received)
                return
        except (ValueError, KeyError, TypeError):
            pass  # a RESUME whose sequence is no number: not a server we can talk to
        self.disconnect()

    def on_messages(self, received: list[Received]) -> None:
        for message in received:
            if isinstance(message, Resume) and not self.resumed:
                self.on_resume(message.after_sequence)
            elif isinstance(message, Cancel):
                self.on_stop("cancelled")
            elif isinstance(message, Done):
                self.done = True
                if self.exit_report is None:
                    self.on_stop("cancelled")  # the server does not want the job (any more)

    def wakeup(self, now: float) -> float | None:
        """Seconds until the connection needs us (a handshake's deadline, a reconnect), or None.
        Reconnects (``connect``) or gives up on a silent server when that time has come."""
        if self.connection is not None:
            if self.resumed:
                return None
            if now < self.handshake_deadline:
                return self.handshake_deadline - now
            self.disconnect()  # connected, but the server does not answer HELLO
        if self.done:
            return None
        if now >= self.reconnect_at:
            self.connect()
            return 0.0
        return self.reconnect_at - now
