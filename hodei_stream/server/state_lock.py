"""One server per state folder: ``server.lock``, whose ``flock`` its one server holds for its
whole life (the kernel drops it when the process dies, however it dies), and the server that
``server.json`` records as running there."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass

from hodei_stream.server.security import open_in_folder
from hodei_stream.state_folder import STATE_FILE_NAME, is_answering, read_in_folder

LOCK_FILE_NAME = "server.lock"


@dataclass(frozen=True)
class RunningServer:
    pid: int
    address: str
    access: str | None  # ACCESS_*; None from a server that did not record it


def running_server(folder: int) -> RunningServer | None:
    """The server recorded in the state folder, if its process lives and it answers."""
    try:
        state = json.loads(read_in_folder(folder, STATE_FILE_NAME) or b"")
        os.kill(state["pid"], 0)
        server = RunningServer(state["pid"], state["address"], state.get("access"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return server if is_answering(server.address) else None


class StateLock:
    """``server.lock``: whoever holds its ``flock`` is the state folder's one server.  The
    holder writes its pid in it, so a refused server can name it even before it answers."""

    def __init__(self, folder: int, inherited: int | None = None) -> None:
        self.folder = folder
        # Created without truncating: the holder's pid stays readable until we hold the lock.
        self.descriptor = (
            inherited if inherited is not None else open_in_folder(folder, LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT)
        )

    def try_acquire(self) -> bool:
        """Take the lock unless another process holds it (an inherited descriptor holds it already)."""
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def record_holder(self) -> None:
        os.set_inheritable(self.descriptor, False)  # not into the supervisors: they outlive us
        os.ftruncate(self.descriptor, 0)
        os.pwrite(self.descriptor, str(os.getpid()).encode(), 0)

    def holder(self) -> str:
        """Who holds the lock, as a user reads it: pid and address (once it answers)."""
        pid = os.pread(self.descriptor, 32, 0).decode(errors="replace").strip() or "?"
        running = running_server(self.folder)
        if running is not None:
            return f"pid {running.pid}, at {running.address}"
        return f"pid {pid}, still starting or not answering"

    def close(self) -> None:
        os.close(self.descriptor)
