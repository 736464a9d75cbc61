"""``api.last_execution``: the one answer to "the job's last execution", for the generated
``GetJobResponse`` (the ``hodei`` command, the job scripts) and stream-logs' ``messages.Job``."""

from __future__ import annotations

from hodei_stream.api import last_execution
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.stream.messages import Execution, Job


def test_the_last_execution_of_a_generated_answer() -> None:
    assert last_execution(pb.GetJobResponse()) is None
    first, retried = pb.JobExecution(exit_code="1"), pb.JobExecution(exit_code="0")
    assert last_execution(pb.GetJobResponse(executions=[first, retried])) == retried


def test_the_last_execution_of_stream_logs_job() -> None:
    assert last_execution(Job(status=1, executions=[])) is None
    first, retried = Execution("1", "failed", 1, 2), Execution("0", "", 3, None)
    assert last_execution(Job(status=4, executions=[first, retried])) is retried
