"""The local worker: one supervisor process per job, and what it reports.

``launch`` starts ``python -m hodei_stream.server.supervisor`` with the job's spec on its
stdin; the supervisor connects back to the worker socket (``worker.sock`` in the state
folder), says HELLO, and then streams STARTED, LINES and EXITED frames, which become status
changes and stored lines.  ``cancel`` sends a CANCEL frame: the supervisor stops the job's
whole process group.  The server never touches the job's processes itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server import frames
from hodei_stream.server.frames import FrameKind
from hodei_stream.server.settings import ServerSettings
from hodei_stream.server.store import JobStore
from hodei_stream.server.supervisor import JobSpec

WORKER_SOCKET_NAME = "worker.sock"
# What a job inherits from the server's environment before its own ``environment`` is laid
# over it: enough for a shell and python3 to behave as in a login, nothing the server holds.
INHERITED_ENVIRONMENT = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
OUTCOME_STATUS = {
    "completed": pb.JOB_STATUS_COMPLETED,
    "failed": pb.JOB_STATUS_FAILED,
    "timeout": pb.JOB_STATUS_TIMEOUT,
    "cancelled": pb.JOB_STATUS_CANCELLED,
}
# A supervisor that exited: how long its connection may still take to deliver the last frames.
LAST_FRAMES_WAIT_S = 5.0


@dataclass
class JobRun:
    """A job being run: its supervisor process and, once it connected, its connection."""

    job_id: str
    task: asyncio.Task[None] | None = None
    connection: asyncio.StreamWriter | None = None
    cancel_reason: str | None = None
    reported: asyncio.Event = field(default_factory=asyncio.Event)  # its connection ended


def job_environment(definition: pb.JobDefinition) -> dict[str, str]:
    inherited = {name: os.environ[name] for name in INHERITED_ENVIRONMENT if name in os.environ}
    return {**inherited, **definition.environment}


class Worker:
    def __init__(self, home: Path, settings: ServerSettings, store: JobStore) -> None:
        self.socket_path = home / WORKER_SOCKET_NAME
        self.settings = settings
        self.store = store
        self.runs: dict[str, JobRun] = {}
        self.listener: asyncio.Server | None = None

    async def start(self) -> None:
        self.socket_path.unlink(missing_ok=True)
        self.listener = await asyncio.start_unix_server(self._on_supervisor, path=str(self.socket_path))
        self.socket_path.chmod(0o600)

    async def close(self) -> None:
        """Cancel every running job and wait (bounded) until their supervisors reported."""
        for job_id in list(self.runs):
            self.cancel(job_id, "the server is stopping")
        tasks = [run.task for run in self.runs.values() if run.task]
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.kill_grace_s + self.settings.shutdown_grace_s)
        if self.listener:
            self.listener.close()
            await self.listener.wait_closed()
        self.socket_path.unlink(missing_ok=True)

    def launch(self, job_id: str, definition: pb.JobDefinition) -> None:
        run = self.runs[job_id] = JobRun(job_id)
        run.task = asyncio.create_task(self._run(run, definition), name=f"job {job_id}")

    def cancel(self, job_id: str, reason: str) -> bool:
        """Ask the job's supervisor to stop it; False when the job is not running here."""
        run = self.runs.get(job_id)
        if run is None:
            return False
        if run.cancel_reason is None:
            run.cancel_reason = reason
            if run.connection:
                run.connection.write(frames.encode_json(FrameKind.CANCEL, {"reason": reason}))
        return True

    async def _run(self, run: JobRun, definition: pb.JobDefinition) -> None:
        timeout = definition.timeout.execution_timeout.ToNanoseconds() / 1e9 if definition.timeout.HasField(
            "execution_timeout") else 0.0
        spec = JobSpec(
            command=definition.command,
            arguments=list(definition.arguments),
            environment=job_environment(definition),
            working_directory=str(Path.home()),
            timeout_s=timeout or None,
            batch_capacity=self.settings.batch_capacity,
            batch_flush_interval_s=self.settings.batch_flush_interval_s,
            kill_grace_s=self.settings.kill_grace_s,
            drain_after_exit_s=self.settings.drain_after_exit_s,
        )
        try:
            supervisor = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hodei_stream.server.supervisor",
                "--socket", str(self.socket_path), "--job-id", run.job_id,
                stdin=asyncio.subprocess.PIPE,
                start_new_session=True,  # a Ctrl+C meant for a foreground server is not the job's
            )
            assert supervisor.stdin is not None
            supervisor.stdin.write(json.dumps(asdict(spec)).encode())
            supervisor.stdin.close()
            self.store.update(run.job_id, status=pb.JOB_STATUS_ASSIGNED)
            status = await supervisor.wait()
            try:
                await asyncio.wait_for(run.reported.wait(), LAST_FRAMES_WAIT_S)
            except asyncio.TimeoutError:
                pass
            if not self.store.is_final(run.job_id):
                self._finish(run.job_id, pb.JOB_STATUS_FAILED, "",
                             f"the job's supervisor ended (status {status}) without reporting the job's exit")
        except OSError as error:
            self._finish(run.job_id, pb.JOB_STATUS_FAILED, "", f"cannot start the job's supervisor: {error}")
        finally:
            del self.runs[run.job_id]

    def _finish(self, job_id: str, status: int, exit_code: str, error: str, ended_ns: int = 0) -> None:
        self.store.update(job_id, status=status, exit_code=exit_code, error_message=error,
                          ended_ns=ended_ns or time.time_ns())

    async def _on_supervisor(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        run: JobRun | None = None
        try:
            hello = await frames.read_frame(reader)
            if hello is None or hello[0] != FrameKind.HELLO:
                return
            run = self.runs.get(json.loads(hello[1])["job_id"])
            if run is None:
                return  # not a job of this server (a later version re-attaches here)
            run.connection = writer
            if run.cancel_reason is not None:
                writer.write(frames.encode_json(FrameKind.CANCEL, {"reason": run.cancel_reason}))
            job_id = run.job_id
            while frame := await frames.read_frame(reader):
                kind, payload = frame
                if kind == FrameKind.LINES:
                    self.store.append_lines(job_id, frames.decode_lines(job_id, payload))
                elif kind == FrameKind.STARTED:
                    self.store.update(job_id, status=pb.JOB_STATUS_RUNNING, started_ns=json.loads(payload)["started_ns"])
                elif kind == FrameKind.EXITED:
                    report = json.loads(payload)
                    self._finish(job_id, OUTCOME_STATUS[report["outcome"]], report["exit_code"],
                                 report["error"], report["ended_ns"])
        except (OSError, asyncio.IncompleteReadError):
            pass  # the supervisor died; ``_run`` marks the job failed
        finally:
            writer.close()
            if run is not None:
                run.connection = None
                run.reported.set()
