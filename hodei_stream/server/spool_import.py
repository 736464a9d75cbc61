"""Finishing jobs from their spools, when their supervisors cannot: at a server's start, the
jobs its predecessor left unfinished whose outcome is known already (so that the server's
first answer is the job's true final state); later, any job whose supervisor is gone.

A supervisor that is gone is replaced by its spool: the server imports the lines the job
wrote and the outcome, if the job ended, or marks the job FAILED and says why.  A spool is
removed only once the store committed what it held.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import TYPE_CHECKING

from hodei_stream.server import supervisor_protocol
from hodei_stream.server.job_outcome import record_outcome
from hodei_stream.server.spool import JobSpool, is_running
from hodei_stream.server.supervisor_protocol import Exited

if TYPE_CHECKING:
    from pathlib import Path

    from hodei_stream.server.store import JobStore

# Starting up: how long the jobs imported from spools may take to be committed before the
# server answers anyway (only a store that cannot write takes longer).
STARTUP_IMPORT_WAIT_S = 10.0


async def take_over(store: JobStore, spool_folder: Path) -> list[str]:
    """Finish, from their spools, the jobs a previous server left whose outcome is known (the
    job ended, or its supervisor is gone); the ids of the others, whose supervisors run."""
    running: list[str] = []
    imports: list[JobSpool] = []
    for record in store.unfinished():
        spool = JobSpool(spool_folder, record.job_id)
        state = spool.read_state()
        pid = state.get("supervisor_pid", 0)
        if pid and not is_running(pid, state.get("supervisor_start_time")):
            await import_spool(store, spool, f"(pid {pid}) died")
            imports.append(spool)
        elif spool.read_exit():
            # Ended while no server ran; its supervisor still waits to hand it over, and
            # is told DONE when it comes back (the job is no run of ours any more).
            await import_spool(store, spool, "")
            imports.append(spool)
        else:
            running.append(record.job_id)
    if imports:
        await forget_once_committed(store, imports, STARTUP_IMPORT_WAIT_S)
    return running


async def forget_once_committed(store: JobStore, spools: list[JobSpool], wait_s: float | None = None) -> None:
    """Remove these imported spools once the store committed what they held (never
    before: a server that dies meanwhile, or a store that cannot write, leaves them to the
    next server); give up waiting after ``wait_s``."""
    try:
        await asyncio.wait_for(store.sync(), wait_s)
    except asyncio.TimeoutError:
        return
    for spool in spools:
        spool.remove()


async def import_spool(store: JobStore, spool: JobSpool, how: str) -> None:
    """Finish a job whose supervisor is gone or done from its spool: the lines the server
    lacks, the outcome if the job ended, else FAILED (and the job's processes stopped,
    since nothing would capture their output any more)."""
    job_id = spool.job_id
    try:
        for payload in spool.payloads_after(store.get(job_id).line_count):  # type: ignore[union-attr]
            store.append_payload(job_id, payload)
    except ValueError:
        pass  # a damaged spool: the lines before the damage are what is kept
    report = spool.read_exit()
    if report:
        await record_outcome(store, job_id, supervisor_protocol.from_json(Exited, report), None)
    else:
        state = spool.read_state()
        if is_running(state.get("job_pid", 0), state.get("job_start_time")):
            try:
                os.killpg(state["job_pid"], signal.SIGKILL)
            except OSError:
                pass  # ended meanwhile
        await record_outcome(
            store,
            job_id,
            Exited.never_ran(
                "failed",
                f"the job's supervisor {how} without reporting the job's exit;"
                " the job was stopped and its output up to then is kept",
                time.time_ns(),
            ),
            None,
        )
