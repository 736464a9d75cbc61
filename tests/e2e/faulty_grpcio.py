"""Faulty Hodei servers written with grpcio (an HTTP/2 and gRPC stack nobody here wrote), to
test how stream-logs retries, as a subprocess:

    python faulty_grpcio.py MODE unix:/path/to.sock

One job, ``JOB_ID``, whose GetJob answers RUNNING for ever.  Each SubscribeLogs and GetLogs
call appends its method name to ``<socket>.calls``, so that a test counts attempts from the
server's side.  ``<socket>.ready`` appears once the server listens.

- ``answers-then-fails``: every SubscribeLogs sends the job's ``LINES`` lines, then ends
  with INTERNAL (a server that answers, then fails); GetLogs pages the same lines.
- ``unimplemented``: SubscribeLogs and GetLogs answer UNIMPLEMENTED (a server without them).
- ``repeats-pages``: GetLogs answers the same page (all the lines, ``has_more`` set) whatever
  it is asked: a pager without a guard asks for ever.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.proto import hodei_pb2_grpc as pb_grpc

JOB_ID = "5d0c4a47-3f2e-4c1b-9d8e-7a6b5c4d3e2f"
LINES = 5


def entries() -> list[pb.JobLogEntry]:
    made = []
    for sequence in range(1, LINES + 1):
        entry = pb.JobLogEntry(job_id=JOB_ID, line=f"line {sequence}", sequence=sequence)
        entry.timestamp.FromNanoseconds(1_700_000_000_000_000_000 + sequence)
        made.append(entry)
    return made


class Jobs(pb_grpc.JobExecutionServiceServicer):
    def GetJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> pb.GetJobResponse:
        if request.job_id.value != JOB_ID:
            context.abort(grpc.StatusCode.NOT_FOUND, "job not found")
        return pb.GetJobResponse(job=pb.JobDefinition(job_id=pb.JobId(value=JOB_ID)), status=pb.JOB_STATUS_RUNNING)


class Logs(pb_grpc.LogStreamServiceServicer):
    def __init__(self, mode: str, calls: Path) -> None:
        self.mode = mode
        self.calls = calls

    def count(self, method: str) -> None:
        with self.calls.open("a") as log:
            log.write(f"{method} {time.monotonic():.3f}\n")

    def SubscribeLogs(
        self, request: pb.SubscribeLogsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.JobLogEntry]:
        self.count("SubscribeLogs")
        if self.mode == "unimplemented":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        yield from entries()
        context.abort(grpc.StatusCode.INTERNAL, "the log store failed")

    def GetLogs(self, request: pb.GetLogsRequest, context: grpc.ServicerContext) -> pb.GetLogsResponse:
        self.count("GetLogs")
        if self.mode == "unimplemented":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        if self.mode == "repeats-pages":
            return pb.GetLogsResponse(entries=entries(), has_more=True)
        return pb.GetLogsResponse(entries=[entry for entry in entries() if entry.sequence > request.since_sequence])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("answers-then-fails", "unimplemented", "repeats-pages"))
    parser.add_argument("socket")
    args = parser.parse_args()
    path = args.socket.removeprefix("unix:")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_JobExecutionServiceServicer_to_server(Jobs(), server)
    pb_grpc.add_LogStreamServiceServicer_to_server(Logs(args.mode, Path(f"{path}.calls")), server)
    server.add_insecure_port(f"unix:{path}")
    server.start()
    Path(f"{path}.ready").touch()
    server.wait_for_termination(timeout=120)  # the test kills us long before


if __name__ == "__main__":
    main()
