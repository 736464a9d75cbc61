"""Jobs outlive their server: SIGKILL the server (real processes), start it again, and every
line the job wrote meanwhile is delivered, once, in order; a supervisor that died too leaves
a FAILED job with its log; the store (its pages compressed) survives a kill in the middle of a
heavy write."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server_helpers import Arrival, all_logs, hodei_server, shell_job, subscribe

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.server.entries import payload_lines
from hodei_stream.server.spool import SPOOL_FOLDER_NAME, JobSpool, is_running
from hodei_stream.server.store import DATABASE_NAME
from hodei_stream.server.store.schema import ZLIB
from hodei_stream.state_folder import embedded_target

Launch = Callable[..., Any]
WaitUntil = Callable[..., Any]


def gated_script(gates: Path, *blocks: tuple[int, int], end: str = "") -> str:
    """Print each block of numbers, waiting for ``gates/N`` to exist before block N > 0."""
    steps = []
    for number, (first, last) in enumerate(blocks):
        if number:
            steps.append(f"until [ -e {gates}/{number} ]; do sleep 0.02; done")
        steps.append(f"seq {first} {last}")
    return "; ".join(steps + ([end] if end else []))


def spooled_count(home: Path, job_id: str) -> int:
    spool = JobSpool(home / SPOOL_FOLDER_NAME, job_id)
    return sum(len(payload_lines(job_id, payload)) for payload in spool.payloads_after(0))


def stored_count(client: HodeiClient, job_id: str) -> int:
    """The last sequence the server has (the tests check elsewhere that they are 1..N)."""
    entries = all_logs(client, job_id, page_lines=5000)
    return entries[-1].sequence if entries else 0


def job_state(home: Path, job_id: str) -> dict[str, Any]:
    return JobSpool(home / SPOOL_FOLDER_NAME, job_id).read_state()


def started_state(home: Path, job_id: str, wait_until: WaitUntil) -> dict[str, Any]:
    """The job's spool state once its supervisor has started it (pids and start times)."""
    return wait_until(
        lambda: job_state(home, job_id).get("job_pid") and job_state(home, job_id),
        what="the job's pid in its spool state",
    )


def sigkill(server: Any) -> None:
    server.process.kill()
    server.process.wait()


def test_jobs_run_on_while_the_server_is_killed_and_every_line_arrives(
    home: Path, tmp_path: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    first = launch_server(home)
    with HodeiClient(first.server) as client:
        job_id = shell_job(client, gated_script(tmp_path, (1, 1000), (1001, 2000), (2001, 3000)))
        wait_until(lambda: stored_count(client, job_id) == 1000, what="the first 1000 lines stored")
    state = started_state(home, job_id, wait_until)
    sigkill(first)
    # The server is gone: the job writes on, its supervisor spools.
    (tmp_path / "1").touch()
    wait_until(lambda: spooled_count(home, job_id) == 2000, what="the lines written meanwhile in the spool")
    assert is_running(state["job_pid"], state["job_start_time"])
    second = launch_server(home)
    with HodeiClient(second.server) as client:
        arrivals: list[Arrival] = []
        subscriber = threading.Thread(target=lambda: arrivals.extend(subscribe(client, job_id)))
        subscriber.start()
        wait_until(lambda: stored_count(client, job_id) == 2000, what="the supervisor to hand over its spool")
        assert client.get_job(job_id).status == pb.JOB_STATUS_RUNNING
        (tmp_path / "2").touch()
        subscriber.join(30)
        assert not subscriber.is_alive()
        assert client.wait_final(job_id).status == pb.JOB_STATUS_COMPLETED
        assert [a.entry.sequence for a in arrivals] == list(range(1, 3001))
        assert [a.entry.line for a in arrivals] == [str(n) for n in range(1, 3001)]
        assert [e.line for e in all_logs(client, job_id, page_lines=5000)] == [str(n) for n in range(1, 3001)]
    # The server confirmed it has everything: the supervisor forgot its spool and exited.
    wait_until(lambda: not (home / SPOOL_FOLDER_NAME / f"{job_id}.lines").exists(), what="the spool removed")
    wait_until(
        lambda: not is_running(state["supervisor_pid"], state["supervisor_start_time"]), what="the supervisor to exit"
    )


def committed_lines(database: sqlite3.Connection, job_id: str) -> tuple[int, int]:
    """How many of the job's lines are committed, in all and in compressed rows."""
    (total, compressed) = database.execute(
        "SELECT coalesce(sum(last_sequence - first_sequence + 1), 0),"
        " coalesce(sum(CASE WHEN compression = ? THEN last_sequence - first_sequence + 1 END), 0)"
        " FROM log_pages WHERE job_id = ?",
        (ZLIB, job_id),
    ).fetchone()
    return total, compressed


def page_rows(database: sqlite3.Connection, job_id: str) -> list[tuple[int, int, bytes]]:
    """The job's committed rows, in order: first and last sequence, payload as stored."""
    return database.execute(
        "SELECT first_sequence, last_sequence, payload FROM log_pages WHERE job_id = ? ORDER BY last_sequence",
        (job_id,),
    ).fetchall()


def test_kill_during_a_heavy_write_of_compressed_pages_loses_nothing_and_corrupts_nothing(
    home: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    total = 300_000
    expected = [f"line number {n}" for n in range(1, total + 1)]
    first = launch_server(home)
    with HodeiClient(first.server) as client, sqlite3.connect(home / DATABASE_NAME) as database:
        job_id = shell_job(client, f"seq 1 {total} | sed 's/^/line number /'")
        # Killed while the job writes and the writer commits compressed pages of it.
        wait_until(lambda: committed_lines(database, job_id)[1] >= 20_000, poll=0.001, what="20,000 lines committed")
        sigkill(first)
        acknowledged = page_rows(database, job_id)  # committed before the kill: they must stay as they are
    database.close()
    assert acknowledged[-1][1] < total, "every line was committed before the kill: write more lines"
    second = launch_server(home)
    with HodeiClient(second.server) as client:
        assert client.wait_final(job_id, deadline_s=60).status == pb.JOB_STATUS_COMPLETED
        entries = all_logs(client, job_id, page_lines=5000)
        assert [e.sequence for e in entries] == list(range(1, total + 1))
        assert [e.line for e in entries] == expected
    with sqlite3.connect(home / DATABASE_NAME) as database:
        assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert database.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # (GetLogs answers from memory what the writer thread is still committing.)
        wait_until(lambda: committed_lines(database, job_id)[0] == total, what="every line committed")
        # Each line in one row, the rows in order, those committed before the kill as they were.
        rows = page_rows(database, job_id)
        assert [first for first, *_ in rows] == [1] + [last + 1 for _, last, *_ in rows[:-1]]
        assert rows[-1][1] == total
        assert rows[: len(acknowledged)] == acknowledged
        # Compressed, those written after the restart too (a row of a line or two may not be).
        assert committed_lines(database, job_id)[1] >= 0.9 * total
    database.close()


def test_a_supervisor_that_died_with_the_server_away_leaves_a_failed_job_and_its_log(
    home: Path, tmp_path: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    first = launch_server(home)
    with HodeiClient(first.server) as client:
        job_id = shell_job(client, gated_script(tmp_path, (1, 100), (101, 200), end="sleep 60"))
        wait_until(lambda: stored_count(client, job_id) == 100, what="the first 100 lines stored")
    state = started_state(home, job_id, wait_until)
    sigkill(first)
    (tmp_path / "1").touch()
    wait_until(lambda: spooled_count(home, job_id) == 200, what="lines 101-200 in the spool")
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    wait_until(lambda: not is_running(state["supervisor_pid"], state["supervisor_start_time"]))
    second = launch_server(home)
    with HodeiClient(second.server) as client:
        job = client.wait_final(job_id, deadline_s=20)
        assert job.status == pb.JOB_STATUS_FAILED
        assert "supervisor" in job.executions[0].error_message and "died" in job.executions[0].error_message
        assert [e.line for e in all_logs(client, job_id)] == [str(n) for n in range(1, 201)]
    # Nothing would capture its output any more: the job itself was stopped.
    wait_until(lambda: not is_running(state["job_pid"], state["job_start_time"]), what="the job to be stopped")


def test_a_supervisor_killed_under_a_running_server_fails_its_job(
    home: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    with HodeiClient(launch_server(home).server) as client:
        job_id = shell_job(client, "seq 1 10; sleep 60")
        wait_until(lambda: stored_count(client, job_id) == 10, what="the first lines")
        state = started_state(home, job_id, wait_until)
        os.kill(state["supervisor_pid"], signal.SIGKILL)
        job = client.wait_final(job_id, deadline_s=20)
        assert job.status == pb.JOB_STATUS_FAILED and "supervisor" in job.executions[0].error_message
        assert len(all_logs(client, job_id)) == 10
        wait_until(lambda: not is_running(state["job_pid"], state["job_start_time"]), what="the job to be stopped")


def test_a_supervisor_whose_server_stays_away_leaves_the_job_to_the_next_one(
    home: Path, tmp_path: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    first = launch_server(home, "--supervisor-linger", "0.3")
    with HodeiClient(first.server) as client:
        job_id = shell_job(client, gated_script(tmp_path, (1, 50), (51, 100), end="exit 4"))
        wait_until(lambda: stored_count(client, job_id) == 50, what="the first 50 lines stored")
    state = started_state(home, job_id, wait_until)
    sigkill(first)
    (tmp_path / "1").touch()
    # The job ends, its supervisor waits for a server a little, then exits leaving the spool.
    wait_until(
        lambda: not is_running(state["supervisor_pid"], state["supervisor_start_time"]),
        what="the supervisor to give up",
    )
    assert spooled_count(home, job_id) == 100
    with HodeiClient(launch_server(home).server) as client:
        job = client.wait_final(job_id, deadline_s=20)
        assert job.status == pb.JOB_STATUS_FAILED and job.executions[0].exit_code == "4"
        assert [e.line for e in all_logs(client, job_id)] == [str(n) for n in range(1, 101)]
    assert not (home / SPOOL_FOLDER_NAME / f"{job_id}.lines").exists()


def test_stop_keep_jobs_leaves_them_running_and_start_reattaches(
    home: Path, tmp_path: Path, wait_until: WaitUntil
) -> None:
    assert hodei_server("start").returncode == 0
    try:
        server = Server(embedded_target(home), embedded=True)
        with HodeiClient(server) as client:
            job_id = shell_job(client, gated_script(tmp_path, (1, 10), (11, 20)))
            wait_until(lambda: stored_count(client, job_id) == 10, what="the first lines")
        stop = hodei_server("stop", "--keep-jobs")
        assert stop.returncode == 0 and "left running" in stop.stdout
        state = job_state(home, job_id)
        assert is_running(state["job_pid"], state["job_start_time"])
        (tmp_path / "1").touch()
        wait_until(lambda: spooled_count(home, job_id) == 20, what="lines 11-20 in the spool")
        assert hodei_server("start").returncode == 0
        with HodeiClient(server) as client:
            assert client.wait_final(job_id, deadline_s=20).status == pb.JOB_STATUS_COMPLETED
            assert [e.line for e in all_logs(client, job_id)] == [str(n) for n in range(1, 21)]
    finally:
        assert hodei_server("stop").returncode == 0


def test_a_restarted_server_answers_a_job_that_ended_meanwhile_as_final_from_its_first_answer(
    home: Path, tmp_path: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    first = launch_server(home)
    with HodeiClient(first.server) as client:
        job_id = shell_job(client, gated_script(tmp_path, (1, 10), (11, 20)))
        wait_until(lambda: stored_count(client, job_id) == 10, what="the first 10 lines stored")
    state = started_state(home, job_id, wait_until)
    sigkill(first)
    (tmp_path / "1").touch()
    # The job ends while no server runs; its supervisor lives on, waiting to hand it over.
    wait_until(lambda: JobSpool(home / SPOOL_FOLDER_NAME, job_id).read_exit(), what="the job's end in its spool")
    assert is_running(state["supervisor_pid"], state["supervisor_start_time"])
    with HodeiClient(launch_server(home).server) as client:
        job = client.get_job(job_id)  # the first answer: no stale RUNNING
        assert job.status == pb.JOB_STATUS_COMPLETED
        assert [e.line for e in all_logs(client, job_id)] == [str(n) for n in range(1, 21)]
    # It came back, was told DONE, and went.
    wait_until(
        lambda: not is_running(state["supervisor_pid"], state["supervisor_start_time"]), what="the supervisor to exit"
    )
    assert not (home / SPOOL_FOLDER_NAME / f"{job_id}.lines").exists()


def test_a_job_cancelled_by_stopping_the_server_says_so(
    home: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    first = launch_server(home)
    with HodeiClient(first.server) as client:
        job_id = shell_job(client, "echo started; sleep 60")
        wait_until(lambda: stored_count(client, job_id) == 1, what="the job to start")
    assert first.stop() == 0
    with HodeiClient(launch_server(home).server) as client:
        job = client.get_job(job_id)
        assert job.status == pb.JOB_STATUS_CANCELLED
        assert job.executions[0].error_message == "cancelled: the server is stopping"
