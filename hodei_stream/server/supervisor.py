"""The small process that runs one job: ``python -m hodei_stream.server.supervisor``.

Why a process of its own per job (as conmon or containerd-shim do for containers): it owns
the job's output and exit, so the server only ever talks to it over a socket, and the job
outlives its server: a restart of the server costs the job nothing.

What it does:
- starts the job in a process group of its own, stdin from /dev/null, stdout and stderr each
  on its own pseudo-terminal in raw mode (no echo, no output post-processing, so no
  ``\\n`` → ``\\r\\n``).  C stdio and python3 line-buffer a terminal, so a job that never
  flushes still hands over each line as it prints it;
- splits the output into lines, keeping ``\\r``, tabs and trailing spaces, decoding UTF-8
  with replacement characters for invalid bytes; a last line without a newline is still a
  line; a line longer than ``MAX_LINE_BYTES`` once decoded (an invalid byte becomes a U+FFFD
  of 3 bytes) is split into several (at a UTF-8 character boundary), each its own entry;
- stamps each line with the capture time and the next sequence number (1, 2, 3… across both
  streams in the order they were read) and sends them in batches (``LogBatcher``);
- enforces the execution timeout and obeys the server's cancel: SIGTERM to the whole group,
  SIGKILL after a grace;
- when the job's main process has exited, reads what is left for a short, bounded time (a
  daemon the job forked may hold the terminal open forever) and reports the exit.

Every batch of lines is appended to the job's spool file (``spool.JobSpool``) before it is
sent.  Sending never blocks: the socket is non-blocking and what it does not take waits in a
buffer of at most ``OUTGOING_LIMIT_BYTES`` (plus one message); lines that find the buffer full
stay in the spool and are sent from there, in order, once the server reads again.  So a
slow, stopped (SIGSTOP) or vanished server never holds up the job's timeout or kill grace,
nor the reading of its output.  If the server goes away the job runs on: the supervisor
keeps spooling and reconnects with back-off; the new server answers ``RESUME`` with the last sequence it stored and gets
every line after it from the spool.  Once the job has ended and the server confirmed
(``DONE``) that it stored everything, the spool is removed and the supervisor exits; a
supervisor whose server does not come back within ``linger_s`` exits and leaves the spool
(and the job's outcome) for the next server to import.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import tty
from pathlib import Path

from hodei_stream.server import supervisor_protocol
from hodei_stream.server.output_lines import LineSplitter
from hodei_stream.server.spool import JobSpool, process_start_time
from hodei_stream.server.supervisor_link import LogBatcher
from hodei_stream.server.supervisor_protocol import Exited, Hello, JobCommand, MessageKind, Resume, Started

READ_CHUNK = 1 << 16
# After the main process exited: a read that finds nothing new for this long means the
# output is drained (what the job wrote before exiting is readable at once).
DRAIN_IDLE_S = 0.05
# Reconnecting to a server that went away: the first retry after this long, then twice as
# long each time, up to the maximum (so a restarted server gets its jobs back within ~1 s).
RECONNECT_FIRST_S = 0.05
RECONNECT_MAX_S = 1.0
# How long a connected server may take to answer HELLO before we count it as away.
HANDSHAKE_TIMEOUT_S = 5.0
# Bytes waiting for a server that does not read (slow, stopped, gone) at most, beyond one
# message: further lines stay in the spool and follow from there once it reads again.
OUTGOING_LIMIT_BYTES = 2 * 1024 * 1024


class Supervisor:
    def __init__(self, job_id: str, spec: JobCommand, socket_path: str) -> None:
        self.job_id = job_id
        self.spec = spec
        self.socket_path = socket_path
        self.spool = JobSpool(Path(spec.spool_directory), job_id)
        self.selector = selectors.DefaultSelector()
        self.splitters = {False: LineSplitter(), True: LineSplitter()}
        self.batcher = LogBatcher(spec.batch_capacity, spec.batch_flush_interval_s)
        self.next_sequence = 1
        self.stop_reason: str | None = None  # "cancelled" or "timeout" once we stop the job
        self.kill_at: float | None = None
        self.pid: int | None = None  # the job's, once started
        # The server, when connected; else when to try again, with a delay that doubles.
        self.connection: socket.socket | None = None
        self.message_reader = supervisor_protocol.MessageReader()
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

    # ---- talking to the server -------------------------------------------------------
    # Every write goes through the event loop: a server that is slow, stopped or gone never
    # holds up the job's timeout, the kill grace or the reading of its output.

    def connect(self) -> None:
        """One attempt to (re)connect: HELLO now; the server's RESUME arrives in the loop."""
        try:
            connection = supervisor_protocol.connect(self.socket_path)
        except OSError:
            self.retry_later()
            return
        self.connection, self.message_reader = connection, supervisor_protocol.MessageReader()
        self.resumed, self.exit_queued = False, False
        self.handshake_deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        self.outgoing.clear()
        self.watching_writes = False
        self.selector.register(connection, selectors.EVENT_READ, "server")
        self.queue(supervisor_protocol.encode_message(Hello(self.job_id, self.next_sequence - 1, os.getpid())))

    def on_resume(self, after_sequence: int) -> None:
        """The server stored every line up to ``after_sequence``: send what it lacks (from the
        spool), then go on live."""
        self.resumed = True
        self.reconnect_delay_s = RECONNECT_FIRST_S
        if self.started_report:
            self.queue(supervisor_protocol.encode_message(self.started_report))
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
                self.queue(supervisor_protocol.encode(MessageKind.LINES, payload))
        if self.connection is not None and not self.behind and self.exit_report and not self.exit_queued:
            self.exit_queued = True
            self.queue(supervisor_protocol.encode_message(self.exit_report))

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
            self.queue(supervisor_protocol.encode(MessageKind.LINES, records))

    def on_server_event(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE and self.connection is not None:
            self.write_out()
            self.catch_up()
        if mask & selectors.EVENT_READ and self.connection is not None:
            self.on_server_readable()

    def on_server_readable(self) -> None:
        assert self.connection is not None
        try:
            chunk = self.connection.recv(READ_CHUNK)
            received = self.message_reader.feed(chunk) if chunk else None
        except BlockingIOError:
            return
        except (OSError, ValueError):  # reset, or a message no server sends (too long, unknown)
            received = None
        try:
            if received is not None:
                self.on_messages(received)
                return
        except (ValueError, KeyError, TypeError):
            pass  # a RESUME without its sequence: not a server we can talk to
        self.disconnect()

    def on_messages(self, received: list[tuple[MessageKind, bytes]]) -> None:
        for kind, payload in received:
            if kind == MessageKind.RESUME and not self.resumed:
                self.on_resume(supervisor_protocol.decode_message(Resume, payload).after_sequence)
            elif kind == MessageKind.CANCEL:
                self.begin_stop("cancelled")
            elif kind == MessageKind.DONE:
                self.done = True
                if self.exit_report is None:
                    self.begin_stop("cancelled")  # the server does not want the job (any more)

    def server_wakeup(self, now: float) -> float | None:
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

    # ---- the job -----------------------------------------------------------------------

    def begin_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.signal_group(signal.SIGTERM)
            self.kill_at = time.monotonic() + self.spec.kill_grace_s

    def group_alive(self) -> bool:
        """Some process of the job's process group still exists."""
        try:
            os.killpg(self.pid, 0)  # type: ignore[arg-type]
        except ProcessLookupError:
            return False
        return True

    def signal_group(self, signum: int) -> None:
        if self.pid is None:
            return  # not started: there is nothing to stop
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass  # the whole group is gone already

    def start(self) -> bool:
        """Start the job; False (after telling the server why) when it cannot start."""
        masters: dict[bool, int] = {}
        slaves: dict[bool, int] = {}
        for is_stderr in (False, True):
            masters[is_stderr], slaves[is_stderr] = os.openpty()
            tty.setraw(slaves[is_stderr])
        try:
            process = subprocess.Popen(
                [self.spec.command, *self.spec.arguments],
                stdin=subprocess.DEVNULL,
                stdout=slaves[False],
                stderr=slaves[True],
                env=self.spec.environment,
                cwd=self.spec.working_directory,
                start_new_session=True,  # its own session and process group: killpg reaches all of it
            )
        except OSError as error:
            reason = error.strerror or str(error)
            self.report_exit(
                Exited.never_ran("failed", f"cannot start '{self.spec.command}': {reason}", time.time_ns())
            )
            return False
        finally:
            for fd in slaves.values():
                os.close(fd)  # only the job holds the terminals now: EOF comes when it closes them
        self.pid = process.pid
        self.process = process
        for is_stderr, fd in masters.items():
            self.selector.register(fd, selectors.EVENT_READ, is_stderr)
        self.pidfd = os.pidfd_open(process.pid)
        self.selector.register(self.pidfd, selectors.EVENT_READ, "exited")
        self.spool.write_state(
            {**self.spool.read_state(), "job_pid": process.pid, "job_start_time": process_start_time(process.pid)}
        )
        self.started_report = Started(process.pid, time.time_ns())
        if self.connection is not None and self.resumed:
            self.queue(supervisor_protocol.encode_message(self.started_report))
        return True

    def on_output(self, fd: int, is_stderr: bool) -> None:
        try:
            chunk = os.read(fd, READ_CHUNK)
        except OSError:  # EIO: every holder of the terminal closed it
            chunk = b""
        if chunk:
            self.add_lines(self.splitters[is_stderr].feed(chunk), is_stderr)
        else:
            self.close_output(fd, is_stderr)

    def close_output(self, fd: int, is_stderr: bool) -> None:
        self.selector.unregister(fd)
        os.close(fd)
        self.add_lines(self.splitters[is_stderr].finish(), is_stderr)

    def add_lines(self, texts: list[str], is_stderr: bool) -> None:
        if not texts:
            return
        records = supervisor_protocol.line_records(self.next_sequence, time.time_ns(), is_stderr, texts)
        self.next_sequence += len(records)
        self.batcher.add(records, time.monotonic())

    def outputs_open(self) -> list[tuple[int, bool]]:
        return [(key.fd, key.data) for key in self.selector.get_map().values() if isinstance(key.data, bool)]

    def run(self) -> None:
        self.spool.open_for_append()
        pid = os.getpid()
        self.spool.write_state({"supervisor_pid": pid, "supervisor_start_time": process_start_time(pid)})
        self.greet()
        if self.stop_reason is not None:  # cancelled before it started
            self.report_exit(Exited.never_ran(self.stop_reason, "", time.time_ns()))
        elif self.start():
            self.follow_job()
        self.hand_over()

    def greet(self) -> None:
        """Before the job starts: connect and wait (at most ``HANDSHAKE_TIMEOUT_S``) for the
        server's answer, which may be that the job is cancelled already."""
        self.connect()
        while self.connection is not None and not self.resumed and self.stop_reason is None:
            wait_s = self.handshake_deadline - time.monotonic()
            if wait_s <= 0:
                self.disconnect()
                return
            for _key, mask in self.selector.select(wait_s):
                self.on_server_event(mask)

    def follow_job(self) -> None:
        """Capture the job's output until it exited and its output is drained; report the exit."""
        timeout_at = time.monotonic() + self.spec.timeout_s if self.spec.timeout_s else None
        exit_status: int | None = None
        drain_until = 0.0
        while True:
            now = time.monotonic()
            if timeout_at is not None and now >= timeout_at:
                self.begin_stop("timeout")
                timeout_at = None
            if self.kill_at is not None and now >= self.kill_at:
                self.signal_group(signal.SIGKILL)
                self.kill_at = None
            if self.batcher.due_in(now) == 0.0:
                self.flush()
            # The drain's deadline is for processes the job left behind holding the terminal;
            # with none left, what is in the terminal is read to its end, however busy we were.
            if exit_status is not None and (not self.outputs_open() or (now >= drain_until and self.group_alive())):
                break
            wakeups = [t - now for t in (timeout_at, self.kill_at) if t is not None]
            if (due := self.batcher.due_in(now)) is not None:
                wakeups.append(due)
            if exit_status is not None:
                wakeups.append(min(DRAIN_IDLE_S, drain_until - now))
            # (Not while draining: a wake-up there must mean "nothing more to read".)
            elif (server_due := self.server_wakeup(now)) is not None:
                wakeups.append(server_due)
            events = self.selector.select(max(0.0, min(wakeups)) if wakeups else None)
            if exit_status is not None and not events:
                break  # nothing more arrived: what the job wrote before exiting is all read
            for key, mask in events:
                if isinstance(key.data, bool):
                    self.on_output(key.fd, key.data)
                elif key.data == "server":
                    self.on_server_event(mask)
                else:
                    self.selector.unregister(self.pidfd)
                    os.close(self.pidfd)
                    exit_status = self.process.wait()
                    drain_until = time.monotonic() + self.spec.drain_after_exit_s
                    if self.stop_reason is not None:
                        self.signal_group(signal.SIGKILL)  # what the group left behind goes too
        for fd, is_stderr in self.outputs_open():
            self.close_output(fd, is_stderr)
        self.report_exit(self.outcome(exit_status))

    def report_exit(self, report: Exited) -> None:
        self.flush()
        self.spool.write_exit(report)  # for a server that finds this supervisor gone
        self.exit_report = report
        if self.connection is not None and self.resumed:
            self.catch_up()  # the outcome goes once every line went

    def hand_over(self) -> None:
        """After the job: wait (reconnecting as needed, at most ``linger_s``) until the server
        confirms it has every line and the outcome, then forget the spool.  A supervisor that
        gives up leaves the spool to the next server, which imports it."""
        give_up = time.monotonic() + self.spec.linger_s
        while not self.done:
            now = time.monotonic()
            if now >= give_up:
                return
            waits = [give_up - now]
            if (server_due := self.server_wakeup(now)) is not None:
                waits.append(server_due)
            for key, mask in self.selector.select(max(0.0, min(waits))):
                if key.data == "server":
                    self.on_server_event(mask)
        self.spool.remove()

    def outcome(self, exit_status: int | None) -> Exited:
        assert exit_status is not None
        return Exited.of_exit_status(exit_status, self.stop_reason, time.time_ns())


USAGE = "usage: python -m hodei_stream.server.supervisor --socket WORKER_SOCKET --job-id JOB_ID < JOB_COMMAND_JSON"


def main(argv: list[str] | None = None) -> int:
    """Run one job for the embedded server (which alone starts this; so no argparse, which
    would cost every job's supervisor ~5 % more start-up)."""
    arguments = sys.argv[1:] if argv is None else argv
    options = dict(zip(arguments[::2], arguments[1::2], strict=True)) if len(arguments) % 2 == 0 else {}
    if len(arguments) != 4 or options.keys() != {"--socket", "--job-id"}:
        print(USAGE, file=sys.stderr)
        return 2
    spec = JobCommand(**json.load(sys.stdin))
    Supervisor(options["--job-id"], spec, options["--socket"]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
