"""A supervisor's connection to the worker socket: an asyncio ``Protocol`` that parses its messages."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hodei_stream.server import supervisor_protocol
from hodei_stream.server.supervisor_protocol import Lines, Received

if TYPE_CHECKING:
    from hodei_stream.server.worker import JobRun, Worker


class SupervisorConnection(asyncio.Protocol):
    """A supervisor's connection to the worker socket.  Messages are parsed as its bytes
    arrive, and a LINES message is stored right there, in the loop iteration that read it:
    a task reading a stream would take it one iteration later, on every line's way to its
    followers.  Any other message (and LINES behind one) goes, in order, to the connection's
    task (``Worker.serve``), which may have to wait.  While the job's lines wait for the
    disk beyond the store's bounds, the connection is not read: the supervisor keeps them."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.reader = supervisor_protocol.RecordReader()
        self.queue: asyncio.Queue[Received | None] = asyncio.Queue()
        self.run: JobRun | None = None  # once the task answered the HELLO
        self.handling = False  # the task is handling a message
        self.paused = False
        self.resuming: asyncio.Task[None] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.task = asyncio.create_task(self.worker.serve(self), name="supervisor connection")

    def data_received(self, data: bytes) -> None:
        try:
            for message in self.reader.feed(data):
                if type(message) is Lines and self.run and not (self.handling or self.paused or self.queue.qsize()):
                    self.worker.on_lines(self.run, message.payload)
                    self.hold_back(self.run.job_id)
                else:
                    self.queue.put_nowait(message)  # (paused: the task waits between them)
        except ValueError:
            self.transport.close()  # nonsense (a gap, a message too long): the supervisor resumes

    def hold_back(self, job_id: str) -> None:
        """Stop reading while the job's lines wait for the disk beyond the store's bounds."""
        if not self.closed and self.worker.store.backlogged(job_id):
            self.paused = True
            self.transport.pause_reading()
            self.resuming = asyncio.create_task(self._resume_once_written(job_id))

    async def _resume_once_written(self, job_id: str) -> None:
        await self.worker.store.wait_for_backlog(job_id)
        self.paused = False
        if not self.closed:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.queue.put_nowait(None)
