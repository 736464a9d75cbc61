"""Starting a job's supervisor and watching it end, from the worker's event loop."""

from __future__ import annotations

import asyncio
import os
from typing import BinaryIO


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
