"""A real embedded server (subprocess) and a grpcio channel: job statuses, exits and logs."""

from __future__ import annotations

import itertools
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from server_helpers import Arrival, all_logs, shell_job, subscribe

from hodei_stream.client import HodeiClient
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb

WaitUntil = Callable[..., Any]


def test_a_cancel_without_a_reason_still_says_who_cancelled(client: HodeiClient, wait_until: WaitUntil) -> None:
    job_id = shell_job(client, "echo started; sleep 60")
    wait_until(lambda: client.get_logs(job_id).entries, what="the job to start")
    assert client.cancel_job(job_id).success
    assert client.wait_final(job_id).executions[0].error_message == "cancelled: requested by a client"


def test_completed_job_has_status_times_and_exit_code(client: HodeiClient) -> None:
    job_id = shell_job(client, "echo hello")
    job = client.wait_final(job_id)
    assert job.status == pb.JOB_STATUS_COMPLETED
    (execution,) = job.executions
    assert execution.exit_code == "0"
    assert execution.state == pb.EXECUTION_STATE_COMPLETED
    assert execution.start_time.ToNanoseconds() <= execution.end_time.ToNanoseconds()
    assert job.job.command == "/bin/bash"
    assert [e.line for e in all_logs(client, job_id)] == ["hello"]


def test_job_goes_through_queued_and_running(client: HodeiClient, wait_until: WaitUntil) -> None:
    job_id = shell_job(client, "read -t 1 < /dev/zero; sleep 1")
    seen = {client.get_job(job_id).status}
    wait_until(lambda: seen.add(client.get_job(job_id).status) or pb.JOB_STATUS_RUNNING in seen, what="RUNNING")
    assert client.wait_final(job_id).status == pb.JOB_STATUS_COMPLETED


def test_failed_job_reports_its_exit_code(client: HodeiClient) -> None:
    job = client.wait_final(shell_job(client, "echo oops >&2; exit 7"))
    assert job.status == pb.JOB_STATUS_FAILED
    assert job.executions[0].exit_code == "7"
    assert job.executions[0].error_message == "exited with status 7"


def test_command_not_found_fails_with_a_reason(client: HodeiClient) -> None:
    job = client.wait_final(client.queue_job("missing", "/no/such/command"))
    assert job.status == pb.JOB_STATUS_FAILED
    assert "/no/such/command" in job.executions[0].error_message


def test_timeout_stops_the_job(client: HodeiClient) -> None:
    started = time.monotonic()
    job = client.wait_final(shell_job(client, "sleep 30", timeout_s=0.5))
    assert job.status == pb.JOB_STATUS_TIMEOUT
    assert job.executions[0].error_message == "exceeded its timeout of 0.5 s"
    assert time.monotonic() - started < 10


def process_group_exists(pgid: int) -> bool:
    # A process that is gone but not yet reaped (a zombie) still counts to kill(); ps does not lie.
    listing = subprocess.run(["ps", "-o", "stat=", "-g", str(pgid)], capture_output=True, text=True, check=False)
    return any(not state.startswith("Z") for state in listing.stdout.split())


def test_cancel_stops_the_whole_process_group(client: HodeiClient, wait_until: WaitUntil) -> None:
    # The job and a child that ignores SIGTERM: both must go.
    job_id = shell_job(client, "echo $$; (trap '' TERM; sleep 60) & sleep 60")
    first = wait_until(lambda: client.get_logs(job_id).entries, what="the job's pid")
    pgid = int(first[0].line)
    assert process_group_exists(pgid)
    assert client.cancel_job(job_id, "no longer needed").success
    job = client.wait_final(job_id)
    assert job.status == pb.JOB_STATUS_CANCELLED
    assert job.executions[0].error_message == "cancelled: no longer needed"
    wait_until(lambda: not process_group_exists(pgid), what="the job's process group to be gone")
    assert not client.cancel_job(job_id).success  # already over


def test_unknown_and_malformed_ids(client: HodeiClient) -> None:
    with pytest.raises(ClientError) as unknown:
        client.get_job(str(uuid.uuid4()))
    assert unknown.value.status == ExitStatus.NOT_FOUND
    for call in (
        lambda: client.jobs.GetJob(pb.GetJobRequest(job_id=pb.JobId(value="nope"))),
        lambda: client.logs.GetLogs(pb.GetLogsRequest(job_id="nope")),
        lambda: list(client.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id="nope"))),
    ):
        with pytest.raises(grpc.RpcError) as malformed:
            call()
        assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as missing:
        list(client.logs.SubscribeLogs(pb.SubscribeLogsRequest(job_id=str(uuid.uuid4()))))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_jobs_newest_first_with_filters(client: HodeiClient) -> None:
    first = client.queue_job("alpha", "/bin/true")
    second = client.queue_job("beta", "/bin/false")
    client.wait_final(first), client.wait_final(second)
    listing = client.list_jobs()
    assert listing.total_count == 2
    assert [j.job_id.value for j in listing.jobs] == [second, first]
    failed = client.jobs.ListJobs(pb.ListJobsRequest(status=pb.JOB_STATUS_FAILED))
    assert [j.name for j in failed.jobs] == ["beta"]
    searched = client.jobs.ListJobs(pb.ListJobsRequest(search_term="ALPH"))
    assert [j.job_id.value for j in searched.jobs] == [first]
    assert client.list_jobs(limit=1, offset=1).jobs[0].job_id.value == first


def test_get_logs_pages_oldest_first(client: HodeiClient) -> None:
    job_id = shell_job(client, "seq 1 2500")
    client.wait_final(job_id)
    page = client.get_logs(job_id, since_sequence=0, limit=1000)
    assert [e.sequence for e in page.entries] == list(range(1, 1001)) and page.has_more
    last = client.get_logs(job_id, since_sequence=2000, limit=1000)
    assert [e.line for e in last.entries] == [str(n) for n in range(2001, 2501)] and not last.has_more
    assert len(client.get_logs(job_id, since_sequence=-5, limit=-1).entries) >= 1  # clamped, not an error
    assert len(client.get_logs(job_id, limit=2**31 - 1).entries) == 2500
    assert [e.sequence for e in all_logs(client, job_id, page_lines=700)] == list(range(1, 2501))


def test_history_then_live_exactly_once_in_order(client: HodeiClient, wait_until: WaitUntil) -> None:
    # Half the lines are written before the subscriber arrives, half after.
    job_id = shell_job(client, "seq 1 500; read -t 1 < /dev/zero; seq 501 1000")
    wait_until(lambda: len(client.get_logs(job_id, limit=5000).entries) >= 500, what="the first half")
    arrivals = subscribe(client, job_id)
    assert [a.entry.sequence for a in arrivals] == list(range(1, 1001))
    assert [a.entry.line for a in arrivals] == [str(n) for n in range(1, 1001)]
    assert all(a.entry.job_id == job_id for a in arrivals)
    stamps = [a.entry.timestamp.ToNanoseconds() for a in arrivals]
    assert stamps == sorted(stamps)


def test_tail_lines_and_live_only(client: HodeiClient, wait_until: WaitUntil) -> None:
    job_id = shell_job(client, "seq 1 100; read -t 1 < /dev/zero; seq 101 110")
    wait_until(lambda: len(client.get_logs(job_id).entries) >= 100, what="the first 100 lines")
    tail = subscribe(client, job_id, tail_lines=5)
    assert [a.entry.sequence for a in tail] == list(range(96, 111))
    live_job = shell_job(client, "seq 1 100; read -t 1 < /dev/zero; seq 101 110")
    wait_until(lambda: len(client.get_logs(live_job).entries) >= 100, what="the first 100 lines")
    live = subscribe(client, live_job, include_history=False)
    assert [a.entry.sequence for a in live] == list(range(101, 111))


def test_subscribing_to_a_finished_job_sends_its_history_and_ends(client: HodeiClient) -> None:
    job_id = shell_job(client, "seq 1 20")
    client.wait_final(job_id)
    assert [a.entry.line for a in subscribe(client, job_id)] == [str(n) for n in range(1, 21)]
    assert subscribe(client, job_id, include_history=False) == []


def assert_line_by_line(arrivals: list[Arrival], count: int) -> None:
    """``count`` lines written 100 ms apart arrived spread out, not in one burst at the end."""
    assert len(arrivals) == count
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(arrivals)]
    assert sum(gap > 0.05 for gap in gaps) >= count - 3, gaps
    assert arrivals[-1].at - arrivals[0].at > 0.1 * (count - 1) * 0.7


def test_python_print_without_flush_arrives_line_by_line(client: HodeiClient) -> None:
    script = "import time\nfor i in range(20):\n    print(i)\n    time.sleep(0.1)\n"
    job_id = client.queue_job("unflushed python", "python3", ["-c", script])
    arrivals = subscribe(client, job_id)
    assert [a.entry.line for a in arrivals] == [str(i) for i in range(20)]
    assert_line_by_line(arrivals, 20)


def test_c_printf_without_fflush_arrives_line_by_line(client: HodeiClient, tmp_path: Path) -> None:
    source = tmp_path / "drip.c"
    source.write_text(
        textwrap.dedent("""\
        #include <stdio.h>
        #include <unistd.h>
        int main(void) {
            for (int i = 0; i < 20; i++) { printf("line %d\\n", i); usleep(100000); }
            return 0;
        }
    """)
    )
    subprocess.run(["gcc", "-o", str(tmp_path / "drip"), str(source)], check=True)
    arrivals = subscribe(client, client.queue_job("unflushed C", str(tmp_path / "drip")))
    assert [a.entry.line for a in arrivals] == [f"line {i}" for i in range(20)]
    assert_line_by_line(arrivals, 20)


def test_awkward_lines_arrive_intact(client: HodeiClient) -> None:
    script = (
        "import sys\n"
        "out = sys.stdout.buffer\n"
        "out.write(b'progress 10%\\rprogress 100%\\n')\n"
        "out.write(b'a\\tb  \\n')\n"
        "out.write(b'bad \\xff\\xfe bytes\\n')\n"
        "out.write(b'x' * (1024 * 1024) + b'\\n')\n"
        "out.flush()\n"
        "sys.stderr.write('on stderr\\n'); sys.stderr.flush()\n"
        "out.write(b'no final newline')\n"
    )
    job_id = client.queue_job("awkward", "python3", ["-c", script])
    arrivals = subscribe(client, job_id)
    # Order is exact within a stream; across stdout and stderr it is the order of capture
    # (two terminals), so the streams are compared one by one.
    stdout = [a.entry.line for a in arrivals if not a.entry.is_stderr]
    assert stdout == [
        "progress 10%\rprogress 100%",
        "a\tb  ",
        "bad \ufffd\ufffd bytes",
        "x" * (1024 * 1024),
        "no final newline",
    ]
    assert [a.entry.line for a in arrivals if a.entry.is_stderr] == ["on stderr"]
    assert [a.entry.sequence for a in arrivals] == list(range(1, 7))
    assert [e.line for e in all_logs(client, job_id)] == [a.entry.line for a in arrivals]


def test_environment_reaches_the_job(client: HodeiClient) -> None:
    job_id = client.queue_job(
        "env", "/bin/bash", ["-c", 'echo "$GREETING"; [ -t 1 ] && echo tty'], environment={"GREETING": "hi there"}
    )
    client.wait_final(job_id)
    assert [e.line for e in all_logs(client, job_id)] == ["hi there", "tty"]


def test_job_ends_when_its_main_process_ends_even_if_a_child_holds_the_output(client: HodeiClient) -> None:
    started = time.monotonic()
    job_id = shell_job(client, "sleep 10 & echo main done")
    job = client.wait_final(job_id, deadline_s=10)
    assert job.status == pb.JOB_STATUS_COMPLETED
    assert time.monotonic() - started < 5
    assert [e.line for e in all_logs(client, job_id)] == ["main done"]
