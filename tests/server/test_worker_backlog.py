"""The worker stops reading a job's supervisor while the job's lines wait for the disk beyond
the store's bounds, and takes every line, in order, once it reads again: a real supervisor
and job, a store whose writer is slow to commit."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server.fanout import Fanout
from hodei_stream.server.settings import ServerSettings
from hodei_stream.server.store import JobRecord, JobStore
from hodei_stream.server.worker import Worker

LINES = 60_000
BACKLOG_LINES = 2_000
# One LINES message may land beyond the bound (it is taken whole): the supervisor reads the
# job's pipe 64 KiB at a time, under 12,000 of these short lines.
ONE_MESSAGE_LINES = 12_000


def test_a_job_past_its_backlog_is_read_no_further_until_committed(tmp_path: Path) -> None:
    settings = ServerSettings(store_max_backlog_lines=BACKLOG_LINES, store_commit_interval_s=0.2)
    job_id = str(uuid.uuid4())

    async def scenario() -> None:
        fanout = Fanout()
        store = JobStore(tmp_path, settings, fanout)
        worker = Worker(tmp_path, settings, store)
        await worker.start()
        definition = pb.JobDefinition(command="seq", arguments=["1", str(LINES)])
        store.create_job(JobRecord(job_id, "seq", pb.JOB_STATUS_QUEUED, created_ns=1), definition.SerializeToString())
        worker.launch(job_id, definition)
        waiting = []  # lines waiting for the writer, each time the job's log changed
        deadline = asyncio.get_running_loop().time() + 120
        while not store.is_final(job_id):
            assert asyncio.get_running_loop().time() < deadline, "the job never ended"
            changed = fanout.waiter(job_id)
            if (log := store.logs.get(job_id)) is not None:
                waiting.append(store.get(job_id).line_count - log.committed_sequence)  # type: ignore[union-attr]
            await asyncio.wait_for(changed.wait(), 60)
        assert store.get(job_id).status == pb.JOB_STATUS_COMPLETED  # type: ignore[union-attr]
        assert max(waiting) <= BACKLOG_LINES + ONE_MESSAGE_LINES
        lines = []
        while page := await store.read(job_id, len(lines)):
            lines += page
        assert [line.text for line in lines] == [str(n) for n in range(1, LINES + 1)]
        while job_id in worker.runs:  # its supervisor told DONE and gone (no lingering one)
            assert asyncio.get_running_loop().time() < deadline, "the supervisor never exited"
            await asyncio.sleep(0.01)
        await worker.close()
        await store.close()

    asyncio.run(scenario())
