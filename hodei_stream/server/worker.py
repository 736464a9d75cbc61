"""The local worker: one supervisor process per job, and what it reports.

``launch`` starts ``python -m hodei_stream.server.supervisor`` (``supervisor_launch``) with
the job's spec on its stdin; the supervisor connects back to the worker socket
(``worker.sock`` in the state folder; ``supervisor_connection``), says HELLO, is told where
to RESUME, and then streams STARTED, LINES and EXITED messages, which become status changes
and stored lines (a supervisor is read no further while its job's lines wait for the disk
beyond the store's bounds, ``JobStore.backlogged``: the job is slowed, the server's memory
stays bounded).  ``cancel`` sends a CANCEL message: the supervisor stops the job's whole
process group.  The server never touches a healthy job's processes itself.

Jobs outlive the server: supervisors run in sessions of their own and reconnect to the next
server.  Before it answers anyone, that server finishes from their spools the jobs its
predecessor left whose outcome is known (``spool_import``); it ``adopt``s the others and
waits for their supervisors.  A supervisor that is gone (its pid no longer runs, or it never
came back within ``reattach_timeout_s``) is replaced by its spool.

Every final state carries a message for users (``job_outcome``).  A job the store could not
write for is stopped (its output could not be kept) and FAILED with the store's message; its
supervisor is told DONE, and so forgets its spool, only once the store committed everything.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server import supervisor_protocol
from hodei_stream.server.job_outcome import record_outcome, timeout_s
from hodei_stream.server.settings import ServerSettings
from hodei_stream.server.spool import SPOOL_FOLDER_NAME, JobSpool
from hodei_stream.server.spool_import import forget_once_committed, import_spool, take_over
from hodei_stream.server.store import JobStore
from hodei_stream.server.supervisor_connection import SupervisorConnection
from hodei_stream.server.supervisor_launch import process_exit, start_supervisor, write_and_close
from hodei_stream.server.supervisor_protocol import (
    Cancel,
    Done,
    Exited,
    Hello,
    JobCommand,
    Lines,
    Received,
    Resume,
    Started,
)

WORKER_SOCKET_NAME = "worker.sock"
# A supervisor that exited: how long its connection may still take to deliver the last messages.
LAST_FRAMES_WAIT_S = 5.0


@dataclass
class JobRun:
    """A job being run: its supervisor (once known) and its connection (while connected)."""

    job_id: str
    task: asyncio.Task[None] | None = None
    connection: asyncio.Transport | None = None
    supervisor_pid: int | None = None  # from HELLO: the process on the other end
    cancel_reason: str | None = None
    attached: asyncio.Event = field(default_factory=asyncio.Event)  # a supervisor said HELLO
    detached: asyncio.Event = field(default_factory=asyncio.Event)  # its connection ended


def job_environment(definition: pb.JobDefinition, inherited: Mapping[str, str]) -> dict[str, str]:
    return {**inherited, **definition.environment}


class Worker:
    def __init__(self, home: Path, settings: ServerSettings, store: JobStore) -> None:
        self.socket_path = home / WORKER_SOCKET_NAME
        self.spool_folder = home / SPOOL_FOLDER_NAME
        self.settings = settings
        self.store = store
        self.runs: dict[str, JobRun] = {}
        self.listener: asyncio.Server | None = None
        store.on_job_failed = self.cancel

    async def start(self) -> None:
        """Finish the jobs a previous server left whose outcome is known, listen for
        supervisors, and adopt the jobs still running."""
        self.spool_folder.mkdir(mode=0o700, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        running = await take_over(self.store, self.spool_folder)
        self.listener = await asyncio.get_running_loop().create_unix_server(
            lambda: SupervisorConnection(self), path=str(self.socket_path)
        )
        self.socket_path.chmod(0o600)
        for job_id in running:
            run = self.runs[job_id] = JobRun(job_id)
            run.task = asyncio.create_task(self._adopt(run), name=f"job {job_id}")

    async def close(self, cancel_jobs: bool = True) -> None:
        """Stop listening.  With ``cancel_jobs``, cancel every running job first and wait
        (bounded) until their supervisors reported; else leave them running: their
        supervisors spool and reconnect to the next server."""
        if cancel_jobs:
            for job_id in list(self.runs):
                self.cancel(job_id, "the server is stopping")
            tasks = [run.task for run in self.runs.values() if run.task]
            if tasks:
                await asyncio.wait(tasks, timeout=self.settings.kill_grace_s + self.settings.shutdown_grace_s)
        if self.listener:
            self.listener.close()
        for run in list(self.runs.values()):
            if run.connection:
                run.connection.close()
            if run.task:
                run.task.cancel()
        self.socket_path.unlink(missing_ok=True)

    def launch(self, job_id: str, definition: pb.JobDefinition) -> None:
        """Run a new job.  Its definition is not kept here (the store has it): only what the
        supervisor is told, until it is told."""
        run = self.runs[job_id] = JobRun(job_id)
        spec = json.dumps(self.job_command(definition)._asdict()).encode()
        run.task = asyncio.create_task(self._run(run, spec), name=f"job {job_id}")

    def cancel(self, job_id: str, reason: str) -> bool:
        """Ask the job's supervisor to stop it; False when the job is not running here."""
        run = self.runs.get(job_id)
        if run is None:
            return False
        if run.cancel_reason is None:
            run.cancel_reason = reason
            if run.connection:
                run.connection.write(supervisor_protocol.encode_record(Cancel(reason)))
        return True

    def job_command(self, definition: pb.JobDefinition) -> JobCommand:
        return JobCommand(
            command=definition.command,
            arguments=list(definition.arguments),
            environment=job_environment(definition, self.settings.environment.job_inherited),
            working_directory=self.settings.environment.job_working_directory,
            timeout_s=timeout_s(definition),
            batch_capacity=self.settings.batch_capacity,
            batch_flush_interval_s=self.settings.batch_flush_interval_s,
            kill_grace_s=self.settings.kill_grace_s,
            drain_after_exit_s=self.settings.drain_after_exit_s,
            spool_directory=str(self.spool_folder),
            linger_s=self.settings.supervisor_linger_s,
        )

    async def _run(self, run: JobRun, spec: bytes) -> None:
        """Start the job's supervisor, tell it ``spec`` (a ``JobCommand`` as JSON) and see it
        through to its end."""
        try:
            supervisor = start_supervisor(self.socket_path, run.job_id, self.settings.environment.supervisor)
        except OSError as error:
            await record_outcome(
                self.store,
                run.job_id,
                Exited.never_ran("failed", f"cannot start the job's supervisor: {error}", 0),
                None,
            )
            del self.runs[run.job_id]
            return
        self.store.update(run.job_id, status=pb.JOB_STATUS_ASSIGNED)  # (before its STARTED can come)
        # In a thread: a big spec waits for the supervisor to read it, the event loop must not.
        await asyncio.to_thread(write_and_close, supervisor.stdin, spec)  # type: ignore[arg-type]
        del spec  # not held for the job's life
        try:
            await process_exit(supervisor.pid)
        finally:
            # Reaped here; when the task is cancelled because the server stops and leaves the
            # job running, the next server adopts the supervisor (not a child of its own).
            if supervisor.poll() is not None:
                await self._after_supervisor(run, f"exited with status {supervisor.returncode}")

    async def _adopt(self, run: JobRun) -> None:
        """A job the previous server left unfinished: wait for its supervisor to come back."""
        pid = JobSpool(self.spool_folder, run.job_id).read_state().get("supervisor_pid", 0)
        if not pid:
            # Not known yet (killed, or the server was, before it wrote its state): one that
            # lives comes back within the bound.
            try:
                await asyncio.wait_for(run.attached.wait(), self.settings.reattach_timeout_s)
            except asyncio.TimeoutError:
                await self._after_supervisor(run, f"did not reconnect within {self.settings.reattach_timeout_s:g}s")
                return
            pid = run.supervisor_pid or 0
        await process_exit(pid)
        await self._after_supervisor(run, "exited")

    async def _after_supervisor(self, run: JobRun, how: str) -> None:
        """The job's supervisor is gone: take its last messages, then whatever its spool holds."""
        try:
            if run.connection is not None:
                await asyncio.wait_for(run.detached.wait(), LAST_FRAMES_WAIT_S)
        except asyncio.TimeoutError:
            pass
        finally:
            del self.runs[run.job_id]
        if not self.store.has_ended(run.job_id):
            spool = JobSpool(self.spool_folder, run.job_id)
            await import_spool(self.store, spool, how)
            await forget_once_committed(self.store, [spool])

    async def serve(self, connection: SupervisorConnection) -> None:
        """A supervisor's conversation, but for the LINES messages its connection stores as
        they arrive: HELLO, RESUME, then its messages in order until the connection ends."""
        run: JobRun | None = None
        transport = connection.transport
        try:
            introduction = await connection.queue.get()
            if not isinstance(introduction, Hello):
                return
            run = self.runs.get(introduction.job_id)
            if run is None:
                # Not a job this server runs (over already, or unknown here): stop it.
                transport.write(supervisor_protocol.encode_record(Done()))
                return
            if run.connection is not None:
                run.connection.close()  # a stale connection of the same supervisor
            job_id = run.job_id
            run.connection, run.supervisor_pid = transport, introduction.pid
            run.detached.clear()
            run.attached.set()
            record = self.store.get(job_id)
            assert record is not None, "a job with a supervisor is in the store"
            transport.write(supervisor_protocol.encode_record(Resume(record.line_count)))
            if run.cancel_reason is not None:
                transport.write(supervisor_protocol.encode_record(Cancel(run.cancel_reason)))
            connection.run = run
            while message := await connection.queue.get():
                connection.handling = True
                await self._on_message(run, transport, message)
                await self.store.wait_for_backlog(job_id)
                connection.handling = False
        except (OSError, ValueError):
            pass  # the supervisor died or spoke nonsense: it reconnects, or its spool is read
        finally:
            transport.close()
            if run is not None and run.connection is transport:
                run.connection = None
                run.detached.set()

    def on_lines(self, run: JobRun, payload: bytes) -> None:
        """A LINES message: stored as received, checked by its headers alone.  A gap raises
        ValueError, which ends the connection: the supervisor reconnects and resumes after
        the last line stored."""
        if not self.store.has_ended(run.job_id):
            self.store.append_payload(run.job_id, payload)

    async def _on_message(self, run: JobRun, transport: asyncio.Transport, message: Received) -> None:
        job_id = run.job_id
        if isinstance(message, Lines):
            self.on_lines(run, message.payload)
        elif self.store.has_ended(job_id):
            # Finished already (the outcome came before a reconnect, or from the spool, or the
            # store failed it): DONE once all of it is on disk, so the spool is kept till then.
            if isinstance(message, Exited):
                await self.store.sync()
                transport.write(supervisor_protocol.encode_record(Done()))
        elif isinstance(message, Started):
            self.store.update(job_id, status=pb.JOB_STATUS_RUNNING, started_ns=message.started_ns)
        elif isinstance(message, Exited):
            await record_outcome(self.store, job_id, message, run.cancel_reason)
            await self.store.sync()  # on disk before the supervisor forgets its spool
            transport.write(supervisor_protocol.encode_record(Done()))
