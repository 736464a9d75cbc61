"""A full disk under the state folder: the store fails loudly and recovers without a restart.

A small tmpfs (root only: ``mount`` needs it) holds ``HODEI_STREAM_HOME``; a filler file takes
the rest of its room while a job writes.  The job that meets the full disk ends FAILED with a
message naming the database and the cause; new jobs are refused with UNAVAILABLE while the
store cannot write; once the filler is deleted the store writes again by itself, the next job
is stored, and everything survives a restart of the server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from server_helpers import all_logs, hodei_server, shell_job

from hodei_stream.client import HodeiClient
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server.spool import SPOOL_FOLDER_NAME
from hodei_stream.server.store import DATABASE_NAME

Launch = Callable[..., Any]
WaitUntil = Callable[..., Any]

DISK_SIZE = "24m"
# A job that writes for ~10 s (long enough to span the full period), one line a millisecond or so.
LONG_JOB_LINES = 8000
LONG_JOB = (
    f"python3 -u -c 'import time\nfor n in range(1, {LONG_JOB_LINES + 1}):\n"
    '    print(n, "x" * 200)\n    time.sleep(0.001)\''
)


@pytest.fixture
def small_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh tmpfs of ``DISK_SIZE``, with HODEI_STREAM_HOME on it; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount_point = Path(tempfile.mkdtemp(prefix="hs-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    home = mount_point / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("HODEI_STREAM_HOME", str(home))
    monkeypatch.delenv("HODEI_GRPC_URL", raising=False)
    try:
        yield home
    finally:
        # A supervisor may still hold a spool open: a lazy unmount lets it go when it closes.
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        shutil.rmtree(mount_point, ignore_errors=True)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk`` with a file; return the file."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 16)
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError:
            pass
    return filler


def queue_request(command: str) -> pb.QueueJobRequest:
    definition = pb.JobDefinition(
        job_id=pb.JobId(value=str(uuid.uuid4())), name="after", command="/bin/bash", arguments=["-c", command]
    )
    return pb.QueueJobRequest(job_definition=definition)


def queued_once_writable(client: HodeiClient, command: str) -> str:
    """Queue a job, trying again while the server answers UNAVAILABLE (the store recovering)."""
    give_up = time.monotonic() + 30
    while True:
        try:
            return client.jobs.QueueJob(queue_request(command), timeout=10).job_id.value
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() >= give_up:  # type: ignore[attr-defined]
                raise
            time.sleep(0.1)


def long_job_meets_a_full_disk(client: HodeiClient, home: Path, wait_until: WaitUntil) -> tuple[str, Path]:
    """Start the long job, let it write its first lines, then fill the disk: its id and the filler."""
    long_job = shell_job(client, LONG_JOB)
    wait_until(
        lambda: len(client.get_logs(long_job, since_sequence=100, limit=1).entries),
        what="the long job's first lines",
    )
    return long_job, fill(home.parent)


def test_a_full_disk_fails_the_job_naming_it_and_the_store_recovers_without_a_restart(
    small_disk: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    home = small_disk
    database = home / DATABASE_NAME
    first = launch_server(home)
    with HodeiClient(first.server) as client:
        long_job, filler = long_job_meets_a_full_disk(client, home, wait_until)
        # It meets the full disk: FAILED (never RUNNING for ever), the database and the cause named.
        job = client.wait_final(long_job, deadline_s=60)
        message = job.executions[0].error_message
        assert job.status == pb.JOB_STATUS_FAILED, message
        assert f"the store could not write to {database}" in message and "full" in message, message
        # While the store cannot write, a new job gets a one-line UNAVAILABLE, not a stale success.
        with pytest.raises(grpc.RpcError) as refused:
            client.jobs.QueueJob(queue_request("echo never"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        assert "could not write" in refused.value.details() and "\n" not in refused.value.details()  # type: ignore[attr-defined]
        # ...and hodei-server status says so (the health service answers NOT_SERVING).
        status = hodei_server("status")
        assert "its store cannot write" in status.stdout, status.stdout
        # Room again: the store writes again by itself, the next job is stored.
        filler.unlink()
        after = queued_once_writable(client, "seq 1 3000")
        assert client.wait_final(after, deadline_s=60).status == pb.JOB_STATUS_COMPLETED
        assert [e.line for e in all_logs(client, after)] == [str(n) for n in range(1, 3001)]
        # The failed job's lines up to the failure are kept, each once, in order.
        kept = [e.sequence for e in all_logs(client, long_job)]
        assert kept == list(range(1, len(kept) + 1)) and len(kept) >= 100
        # Its supervisor forgets its spool only once all of it is committed.
        wait_until(
            lambda: not (home / SPOOL_FOLDER_NAME / f"{long_job}.lines").exists(),
            timeout=30,
            what="the failed job's spool removed after the store recovered",
        )
    assert first.stop() == 0
    with HodeiClient(launch_server(home).server) as client:
        assert client.get_job(after).status == pb.JOB_STATUS_COMPLETED
        assert [e.line for e in all_logs(client, after)] == [str(n) for n in range(1, 3001)]
        job = client.get_job(long_job)
        assert job.status == pb.JOB_STATUS_FAILED and "full" in job.executions[0].error_message
        assert [e.sequence for e in all_logs(client, long_job)] == kept


def test_a_server_stopped_while_the_disk_is_full_stops_and_the_next_one_keeps_every_spooled_line(
    small_disk: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    home = small_disk
    first = launch_server(home)
    with HodeiClient(first.server) as client:
        long_job, filler = long_job_meets_a_full_disk(client, home, wait_until)
        assert client.wait_final(long_job, deadline_s=60).status == pb.JOB_STATUS_FAILED
    stopping = time.monotonic()
    assert first.stop() == 0  # the writer gives up the write it cannot do; the spools keep the lines
    assert time.monotonic() - stopping < 15
    filler.unlink()
    with HodeiClient(launch_server(home).server) as client:
        job = client.wait_final(long_job, deadline_s=60)
        # Stopped by the first server (its FAILED could not be written): every line it wrote till then.
        assert job.status == pb.JOB_STATUS_CANCELLED, job.executions[0].error_message
        assert job.executions[0].error_message == "cancelled by a previous server"
        kept = [e.sequence for e in all_logs(client, long_job)]
        assert kept == list(range(1, len(kept) + 1)) and len(kept) >= 100
