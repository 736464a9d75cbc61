"""The platform's log service: per-job lines in memory, their subscribers, and the
LogStreamService that serves them, with the platform's faults.

State, per job id (matched as a string: only the lowercase hyphenated form the worker uses):
- the last ``KEPT`` lines with their true sequence numbers;
- a sequence counter, counted as each line arrives;
- the subscribers' channels (``CHANNEL_CAPACITY`` entries each).

Appending a line takes the job's buffer lock, then, under the job's subscriber lock, sends
the line to every subscriber's channel and waits for room there: a slow subscriber blocks the
job's log intake.  A new subscriber copies the whole buffer into its channel *while holding the
buffer lock* and before anyone reads that channel: past ``CHANNEL_CAPACITY`` lines it waits
for ever, and the job's intake waits with it.  GetLogs and SubscribeLogs' history read the
buffer without that lock (the platform's map lets readers share it), so they still answer.
When a job's result arrives, its lines, subscribers and counter are dropped: the subscribers'
channels close (their streams end after what was queued) and the next line counts from 1.

Lines travel between these parts as ``JobLogEntry`` with their true sequence; only what
SubscribeLogs forwards is renumbered.  ``true_sequences`` makes a gentler platform than v0.69.1,
which forwards every line with its true number: for tests of a client's other defences.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque

import grpclib.server

from hodei_stream.proto import hodei_grpc
from hodei_stream.proto import hodei_pb2 as pb

from .channel import Channel

KEPT = 1000  # lines kept per job
CHANNEL_CAPACITY = 100  # entries a subscriber's channels hold


class LogService:
    """The lines, counters and subscribers of every job, and the locks between them."""

    def __init__(self, channel_capacity: int = CHANNEL_CAPACITY) -> None:
        self.channel_capacity = channel_capacity
        self.buffers: dict[str, deque[pb.JobLogEntry]] = {}
        self.counters: dict[str, int] = {}
        self.subscribers: dict[str, list[Channel[pb.JobLogEntry]]] = {}
        self.buffer_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.subscriber_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def append(self, line: pb.LogEntry) -> None:
        """One line from a worker: counted, kept, then sent to each subscriber (waiting for room)."""
        job_id = line.job_id
        self.counters[job_id] = sequence = self.counters.get(job_id, 0) + 1
        entry = pb.JobLogEntry(
            job_id=job_id, line=line.line, is_stderr=line.is_stderr, timestamp=line.timestamp, sequence=sequence
        )
        async with self.buffer_locks[job_id]:
            self.buffers.setdefault(job_id, deque(maxlen=KEPT)).append(entry)
        async with self.subscriber_locks[job_id]:
            for channel in list(self.subscribers.get(job_id, ())):
                await channel.send(entry)  # a subscriber that left refuses it; the others wait for room

    def entries(self, job_id: str, limit: int = 0, since_sequence: int = 0) -> list[pb.JobLogEntry]:
        """The kept lines after ``since_sequence`` (when > 0), then the last ``limit`` of them
        (when > 0), oldest first, with their true sequences."""
        kept = self.buffers.get(job_id, ())
        newer = [entry for entry in kept if since_sequence <= 0 or entry.sequence > since_sequence]
        return newer[-limit:] if limit > 0 else newer

    async def subscribe(self, job_id: str) -> Channel[pb.JobLogEntry]:
        """A channel holding the whole buffer, then every line that arrives; it hangs (holding
        the buffer lock) while the buffer holds more lines than the channel has room for."""
        channel: Channel[pb.JobLogEntry] = Channel(self.channel_capacity)
        async with self.buffer_locks[job_id]:
            for entry in list(self.buffers.get(job_id, ())):
                await channel.send(entry)
        async with self.subscriber_locks[job_id]:
            self.subscribers.setdefault(job_id, []).append(channel)
        return channel

    async def drop(self, job_id: str) -> None:
        """The job's result arrived: its lines, subscribers and counter go."""
        async with self.buffer_locks[job_id]:
            self.buffers.pop(job_id, None)
        async with self.subscriber_locks[job_id]:
            for channel in self.subscribers.pop(job_id, []):
                await channel.close()
        self.counters.pop(job_id, None)


class LogStreamServicer(hodei_grpc.LogStreamServiceBase):
    """SubscribeLogs and GetLogs over a ``LogService``, as the platform answers them."""

    def __init__(self, service: LogService, true_sequences: bool = False) -> None:
        self.service = service
        self.true_sequences = true_sequences

    async def SubscribeLogs(self, stream: grpclib.server.Stream[pb.SubscribeLogsRequest, pb.JobLogEntry]) -> None:
        request = await stream.recv_message()
        assert request is not None
        job_id = request.job_id  # never checked: an unknown id gets a stream that stays silent
        outgoing: Channel[pb.JobLogEntry] = Channel(self.service.channel_capacity)
        incoming: Channel[pb.JobLogEntry] | None = None
        forwarder: asyncio.Task[None] | None = None
        try:
            if request.include_history:
                # Nobody reads ``outgoing`` until the handler returns: past its capacity this waits for ever.
                for entry in self.service.entries(job_id, limit=request.tail_lines):
                    await outgoing.send(entry)
            incoming = await self.service.subscribe(job_id)
            forwarder = asyncio.create_task(self.forward(job_id, incoming, outgoing))
            await stream.send_initial_metadata()  # the handler has returned its stream
            while (entry := await outgoing.receive()) is not None:
                await stream.send_message(entry)
        finally:
            await outgoing.drop_receiver()
            if incoming is not None:
                await incoming.drop_receiver()
            if forwarder is not None:
                forwarder.cancel()  # it may be waiting for a line that never comes

    async def forward(self, job_id: str, incoming: Channel[pb.JobLogEntry], outgoing: Channel[pb.JobLogEntry]) -> None:
        """The buffer again, then live lines, each numbered with the job's counter as the
        forwarder turns to it: a line already waiting gets the count after its
        whole batch, a line the forwarder waits for (a batch's first) the count from before it
        arrived, and after the job's end the counter is gone (0).  Closes ``outgoing`` once
        ``incoming`` ends."""
        while True:
            counter = self.service.counters.get(job_id, 0)
            entry = await incoming.receive()
            if entry is None:
                break
            forwarded = pb.JobLogEntry()
            forwarded.CopyFrom(entry)
            if not self.true_sequences:
                forwarded.sequence = counter
            if not await outgoing.send(forwarded):
                return  # the client left
        await outgoing.close()

    async def GetLogs(self, stream: grpclib.server.Stream[pb.GetLogsRequest, pb.GetLogsResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        entries = self.service.entries(request.job_id, limit=request.limit, since_sequence=request.since_sequence)
        await stream.send_message(pb.GetLogsResponse(entries=entries, has_more=False))
