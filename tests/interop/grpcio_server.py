"""The one job (``one_job.py``) served by grpcio, Google's gRPC stack: plaintext, TLS, or
with every answer gzip-compressed (``grpc.Compression.Gzip``)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.proto import hodei_pb2_grpc
from hodei_stream.records import EXACT_SEQUENCES_HEADER

from .one_job import GAP, GROUP, JOB_ID, LINES


def entry(sequence: int) -> pb.JobLogEntry:
    text, is_stderr = LINES[sequence - 1]
    line = pb.JobLogEntry(job_id=JOB_ID, line=text, is_stderr=is_stderr, sequence=sequence)
    line.timestamp.FromNanoseconds(1_700_000_000_000_000_000 + sequence * 1_000_000)
    return line


class Jobs(hodei_pb2_grpc.JobExecutionServiceServicer):
    def __init__(self, streamed: threading.Event) -> None:
        self.streamed = streamed

    def GetJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> pb.GetJobResponse:
        if request.job_id.value != JOB_ID:
            context.abort(grpc.StatusCode.NOT_FOUND, f"job {request.job_id.value} not found")
        status = pb.JOB_STATUS_COMPLETED if self.streamed.is_set() else pb.JOB_STATUS_RUNNING
        return pb.GetJobResponse(job=pb.JobDefinition(job_id=pb.JobId(value=JOB_ID), name="interop job"), status=status)


class Logs(hodei_pb2_grpc.LogStreamServiceServicer):
    def __init__(self, streamed: threading.Event) -> None:
        self.streamed = streamed

    def SubscribeLogs(self, request: pb.SubscribeLogsRequest, context: grpc.ServicerContext):  # type: ignore[no-untyped-def]
        if request.job_id != JOB_ID:
            context.abort(grpc.StatusCode.NOT_FOUND, f"job {request.job_id} not found")
        context.send_initial_metadata((EXACT_SEQUENCES_HEADER,))
        for sequence in range(1, len(LINES) + 1):
            if sequence != GAP:
                yield entry(sequence)
            if sequence % GROUP == 0:
                time.sleep(0.005)
        self.streamed.set()

    def GetLogs(self, request: pb.GetLogsRequest, context: grpc.ServicerContext) -> pb.GetLogsResponse:
        if request.job_id != JOB_ID:
            context.abort(grpc.StatusCode.NOT_FOUND, f"job {request.job_id} not found")
        last = min(len(LINES), request.since_sequence + (request.limit or 1000))
        return pb.GetLogsResponse(
            entries=[entry(s) for s in range(request.since_sequence + 1, last + 1)], has_more=last < len(LINES)
        )


def serve(mode: str, certificate: tuple[Path, Path] | None = None) -> tuple[grpc.Server, str]:
    """A started grpcio server on 127.0.0.1 (``mode``: plain, tls or gzip) and its address."""
    streamed = threading.Event()
    compression = grpc.Compression.Gzip if mode == "gzip" else None
    server = grpc.server(ThreadPoolExecutor(max_workers=8), compression=compression)
    hodei_pb2_grpc.add_JobExecutionServiceServicer_to_server(Jobs(streamed), server)
    hodei_pb2_grpc.add_LogStreamServiceServicer_to_server(Logs(streamed), server)
    if mode == "tls":
        assert certificate is not None
        cert, key = certificate
        credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"
