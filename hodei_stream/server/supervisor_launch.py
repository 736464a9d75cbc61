"""Starting a job's supervisor and watching it end, from the worker's event loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
from typing import TYPE_CHECKING, BinaryIO

from hodei_stream.own_python import module_command

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


def start_supervisor(socket_path: Path, job_id: str, environment: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start the supervisor of job ``job_id``, its stdin a pipe for the job's ``JobCommand``;
    OSError when it cannot start.

    Not asyncio's subprocesses: they kill their children when the loop closes, and a
    supervisor must outlive this server (``stop --keep-jobs``, a crash)."""
    return subprocess.Popen(
        [*module_command("hodei_stream.server.supervisor"), "--socket", str(socket_path), "--job-id", job_id],
        stdin=subprocess.PIPE,
        env=dict(environment),
        start_new_session=True,  # a Ctrl+C or SIGKILL meant for the server is not the job's
    )


def write_and_close(pipe: BinaryIO, data: bytes) -> None:
    try:
        with pipe:
            pipe.write(data)
    except BrokenPipeError:
        pass  # the supervisor is gone already: its exit is handled as any other


async def process_exit(pid: int) -> None:
    """Return when process ``pid`` has ended (at once if it has already).  Not only for our
    own children: a supervisor adopted from a previous server is watched the same way."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    ended = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()

    def exited() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(pidfd, exited)
    try:
        await ended
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
