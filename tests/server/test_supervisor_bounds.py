"""A supervisor never waits on its server, and neither end believes a message's length blindly:
a SIGSTOPped server does not stop a job's timeout and kill grace; an absurd length prefix
is refused before anything is read (or allocated) for it."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from server_helpers import all_logs, shell_job

from hodei_stream.client import HodeiClient
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import LogLine
from hodei_stream.server import supervisor_protocol
from hodei_stream.server.entries import payload_lines
from hodei_stream.server.output_lines import MAX_LINE_BYTES, LineSplitter
from hodei_stream.server.spool import SPOOL_FOLDER_NAME, JobSpool
from hodei_stream.server.supervisor_protocol import HEADER, MAX_PAYLOAD_BYTES, RecordKind, RecordTooLong

Launch = Callable[..., Any]
WaitUntil = Callable[..., Any]
KILL_GRACE_S = 3.0  # ServerSettings.kill_grace_s
# A job that goes on writing (about 2 MB/s: far more than a stopped server's socket takes)
# and ignores SIGTERM, so only the kill after the grace ends it.
STUBBORN_WRITER = "trap '' TERM; while :; do seq 1 20000; sleep 0.05; done"


def test_timeout_and_kill_grace_hold_while_the_server_is_stopped(
    home: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    server = launch_server(home)
    with HodeiClient(server.server) as client:
        job_id = shell_job(client, STUBBORN_WRITER, timeout_s=2.0)
        started = wait_until(
            lambda: (job := client.get_job(job_id)).status == pb.JOB_STATUS_RUNNING and job, what="the job running"
        )
        wait_until(lambda: client.get_logs(job_id, limit=1).entries, what="lines stored")
    started_ns = started.executions[0].start_time.ToNanoseconds()
    spool = JobSpool(home / SPOOL_FOLDER_NAME, job_id)
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        # Its outcome on disk, from the supervisor alone: the server reads nothing meanwhile.
        report = wait_until(spool.read_exit, timeout=60, what="the supervisor's exit report")
        # What the server did not read waits in the spool, not in the supervisor's memory.
        assert resident_kib(spool.read_state()["supervisor_pid"]) < 64 * 1024
        assert spool.lines_path.stat().st_size > 4 * 1024 * 1024
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert report["outcome"] == "timeout" and report["exit_code"] == str(128 + signal.SIGKILL)
    took_s = (report["ended_ns"] - started_ns) / 1e9
    # 2 s timeout + 3 s grace; generous beyond that for a loaded machine, but far below "never".
    assert 2.0 + KILL_GRACE_S - 0.5 <= took_s <= 2.0 + KILL_GRACE_S + 10, took_s
    with HodeiClient(server.server) as client:
        job = client.wait_final(job_id)
        assert job.status == pb.JOB_STATUS_TIMEOUT
        entries = all_logs(client, job_id, page_lines=5000)
    # Every line the job wrote while the server was stopped reached it, once, in order.
    assert [entry.sequence for entry in entries] == list(range(1, len(entries) + 1))
    assert len(entries) > 20000


def test_an_oversized_length_prefix_is_refused_at_once(home: Path, launch_server: Launch) -> None:
    server = launch_server(home)
    rss_before = resident_kib(server.process.pid)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
        peer.settimeout(10)
        peer.connect(str(home / "worker.sock"))
        peer.sendall(HEADER.pack(RecordKind.HELLO, 0xFFFF_FFF0) + b"{" * 4096)
        # The server hangs up instead of waiting for (and buffering) 4 GiB.
        deadline = time.monotonic() + 10
        while chunk := peer.recv(1 << 16):
            assert time.monotonic() < deadline
        assert chunk == b""
    assert resident_kib(server.process.pid) - rss_before < 64 * 1024
    with HodeiClient(server.server) as client:  # and it goes on serving
        assert client.wait_final(shell_job(client, "echo fine")).status == pb.JOB_STATUS_COMPLETED


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    pytest.skip("no VmRSS in /proc: cannot measure the server's memory")


def test_both_readers_refuse_a_length_over_the_cap() -> None:
    reader = supervisor_protocol.RecordReader()
    with pytest.raises(RecordTooLong):
        reader.feed(HEADER.pack(RecordKind.RESUME, MAX_PAYLOAD_BYTES + 1))
    assert supervisor_protocol.RecordReader().feed(
        supervisor_protocol.encode_json(RecordKind.RESUME, {"after_sequence": 3})
    ) == [supervisor_protocol.Resume(3)]
    with pytest.raises(RecordTooLong):
        supervisor_protocol.encode(RecordKind.LINES, b"x" * (MAX_PAYLOAD_BYTES + 1))


def test_the_largest_lines_batch_fits_the_cap() -> None:
    """A line of 2 MiB of invalid bytes (6 MiB once each became U+FFFD) is cut on its decoded
    size; a batch is closed at BATCH_BYTES, so one with such a line after 1 MiB still fits."""
    splitter = LineSplitter()
    widest = splitter.feed(b"\xff" * MAX_LINE_BYTES + b"\n")
    assert "".join(widest) == "\ufffd" * MAX_LINE_BYTES
    # 6 MiB of UTF-8 in pieces of whole characters (3 bytes each), so just under 2 MiB: four.
    assert len(widest) == 4 and all(len(piece.encode()) <= MAX_LINE_BYTES for piece in widest)
    texts = ["y" * 1000] * 1049 + widest
    records = supervisor_protocol.line_records(1, 0, False, texts)
    batches = list(supervisor_protocol.batch_records(records, 1))
    assert batches[0][1] == 1 and batches[-1][2] == len(texts)
    for payload, first, last in batches:
        supervisor_protocol.encode(RecordKind.LINES, payload)  # within the cap
        assert supervisor_protocol.last_sequence(payload) == last
        assert [line.text for line in payload_lines("job", payload)] == texts[first - 1 : last]
    lines = [LogLine("job", n, 0, False, text) for n, text in enumerate(texts, 1)]
    assert b"".join(payload for payload, _, _ in batches) == supervisor_protocol.encode_line_records(lines)
