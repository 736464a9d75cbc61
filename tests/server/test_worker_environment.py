"""The server reads its environment once, when its settings are made at its start: each job
gets the inherited variables and the home folder read then, and neither the job nor its
supervisor gets the token.  A real worker, supervisor and job."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server.fanout import Fanout
from hodei_stream.server.settings import ServerEnvironment, ServerSettings
from hodei_stream.server.store import JobRecord, JobStore
from hodei_stream.server.worker import Worker

TOKEN = "t0k3n-of-the-server"
# The job prints where it runs, two variables, and its supervisor's environment (its parent's).
SCRIPT = 'pwd; echo "LANG=$LANG"; echo "token=${HODEI_TOKEN-unset}"; tr "\\0" "\\n" < /proc/$PPID/environ'


def test_read_takes_the_inherited_names_and_leaves_the_token_out() -> None:
    environ = {"PATH": "/bin", "HOME": "/home/someone/", "HODEI_TOKEN": TOKEN, "EDITOR": "vi"}
    environment = ServerEnvironment.read(environ)
    assert environment.job_inherited == {"PATH": "/bin", "HOME": "/home/someone/"}
    assert environment.job_working_directory == "/home/someone"
    assert environment.supervisor == {"PATH": "/bin", "HOME": "/home/someone/", "EDITOR": "vi"}


def test_a_job_gets_the_environment_read_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("HODEI_TOKEN", TOKEN)
    settings = ServerSettings()
    # Changed once the server started: no job may see it.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LANG", "changed-after-start")
    job_id = str(uuid.uuid4())

    async def scenario() -> list[str]:
        fanout = Fanout()
        store = JobStore(tmp_path, settings, fanout)
        worker = Worker(tmp_path, settings, store)
        await worker.start()
        definition = pb.JobDefinition(command="/bin/sh", arguments=["-c", SCRIPT])
        store.create_job(JobRecord(job_id, "env", pb.JOB_STATUS_QUEUED, created_ns=1), definition.SerializeToString())
        worker.launch(job_id, definition)
        deadline = asyncio.get_running_loop().time() + 60
        while not store.is_final(job_id):
            assert asyncio.get_running_loop().time() < deadline, "the job never ended"
            changed = fanout.waiter(job_id)
            await asyncio.wait_for(changed.wait(), 30)
        assert store.get(job_id).status == pb.JOB_STATUS_COMPLETED  # type: ignore[union-attr]
        lines: list[str] = []
        while page := await store.read(job_id, len(lines)):
            lines += [line.text for line in page]
        await worker.close()
        await store.close()
        return lines

    lines = asyncio.run(scenario())
    assert lines[:3] == [str(home), "LANG=C.UTF-8", "token=unset"]
    supervisor_environment = lines[3:]
    assert "LANG=C.UTF-8" in supervisor_environment and f"HOME={home}" in supervisor_environment
    assert not any(TOKEN in line for line in supervisor_environment)
