"""A small synchronous client for the Hodei API (grpcio), for ``hodei`` and the job scripts.

It opens the channel, makes the unary calls the commands need, and turns a failed call into
a ``ClientError`` that carries a one-line message and the exit status to leave with.  The
streamer does not use it: it reads logs over its own transport (``stream/wire.py``), which
keeps grpcio's start-up and per-message cost off the path of every line.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import grpc
import grpc.experimental

from hodei_stream.api import FINAL_STATUSES
from hodei_stream.endpoint import (
    MAX_MESSAGE_BYTES,
    UNARY_TIMEOUT_S,
    ClientSettings,
    Route,
    Server,
)
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.proto import hodei_pb2_grpc as pb_grpc
from hodei_stream.state_folder import ENV_TLS_CA

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Reads a server stream on the calling thread instead of a hand-off to a poller
    # thread: several times the lines per second for the same CPU (see the benchmarks).
    (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),
]


def open_channel(target: str, settings: ClientSettings) -> grpc.Channel:
    """Plaintext, as the platform speaks; TLS to a TCP address when ``HODEI_TLS_CA`` names the
    CA bundle to trust; with a token (``HODEI_TOKEN``, or the token file of this user's server at
    that address: ``state_folder.client_token``), every call carries ``authorization: Bearer
    <token>`` (without TLS gRPC sends a token only to a loopback address or a Unix socket).
    The way is ``endpoint.Route``'s, as for every client."""
    route = Route.to(target, settings)
    if not route.token and not route.tls_ca:
        return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    if route.tls_ca:
        try:
            credentials = grpc.ssl_channel_credentials(Path(route.tls_ca).read_bytes())
        except OSError as error:
            raise ClientError(f"cannot read {ENV_TLS_CA}={route.tls_ca} ({error.strerror})", ExitStatus.USAGE) from None
    else:
        local = grpc.LocalConnectionType.UDS if route.unix_path is not None else grpc.LocalConnectionType.LOCAL_TCP
        credentials = grpc.local_channel_credentials(local)
    if route.token:
        credentials = grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(route.token))
    return grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)


def client_error(error: grpc.RpcError, server: Server, what: str, job_id: str = "") -> ClientError:
    """A gRPC failure as a ``ClientError`` whose message says what to do."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = error.details() if isinstance(error, grpc.Call) else ""
    return server.failure(code.name, details or "", what, job_id)


def raise_for(error: grpc.RpcError, server: Server, what: str, job_id: str = "") -> NoReturn:
    raise client_error(error, server, what, job_id) from None


class HodeiClient:
    """The unary calls of JobExecutionService and LogStreamService on one channel."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.channel = open_channel(server.target, server.settings)
        self.jobs = pb_grpc.JobExecutionServiceStub(self.channel)
        self.logs = pb_grpc.LogStreamServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> HodeiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def queue_job(
        self,
        name: str,
        command: str,
        arguments: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        description: str = "",
        tags: Sequence[str] = (),
    ) -> str:
        """Submit a job and return its id (a new UUID, chosen here as the platform's clients do)."""
        definition = pb.JobDefinition(
            job_id=pb.JobId(value=str(uuid.uuid4())),
            name=name,
            description=description,
            command=command,
            arguments=list(arguments),
            environment=dict(environment or {}),
            tags=list(tags),
        )
        if timeout_s:
            definition.timeout.execution_timeout.FromNanoseconds(int(timeout_s * 1e9))
        request = pb.QueueJobRequest(job_definition=definition, queued_by="hodei-stream")
        try:
            response = self.jobs.QueueJob(request, timeout=UNARY_TIMEOUT_S)
        except grpc.RpcError as error:
            raise_for(error, self.server, "queueing the job failed")
        if not response.success:
            raise ClientError(f"the server refused the job: {response.message}", ExitStatus.JOB_FAILED)
        return response.job_id.value or definition.job_id.value

    def get_job(self, job_id: str) -> pb.GetJobResponse:
        try:
            response: pb.GetJobResponse = self.jobs.GetJob(
                pb.GetJobRequest(job_id=pb.JobId(value=job_id)), timeout=UNARY_TIMEOUT_S
            )  # (the generated stubs are untyped)
            return response
        except grpc.RpcError as error:
            raise_for(error, self.server, f"GetJob {job_id}", job_id)

    def list_jobs(
        self, limit: int = 50, offset: int = 0, search_term: str = "", status: int | None = None
    ) -> pb.ListJobsResponse:
        request = pb.ListJobsRequest(
            limit=limit,
            offset=offset,
            status=None if status is None else pb.JobStatus.Name(status),  # None: unset, every status
            search_term=search_term or None,
        )
        try:
            response: pb.ListJobsResponse = self.jobs.ListJobs(request, timeout=UNARY_TIMEOUT_S)
            return response
        except grpc.RpcError as error:
            if isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.CANCELLED:
                # A Hodei platform resets ListJobs whenever the page has jobs: say what still works.
                raise ClientError(
                    f"the server at {self.server} could not list jobs (ListJobs: {error.details()}); "
                    "hodei status JOB_ID still works",
                    ExitStatus.UNREACHABLE,
                ) from None
            raise_for(error, self.server, "ListJobs")

    def cancel_job(self, job_id: str, reason: str = "") -> pb.CancelJobResponse:
        request = pb.CancelJobRequest(job_id=pb.JobId(value=job_id), reason=reason)
        try:
            response: pb.CancelJobResponse = self.jobs.CancelJob(request, timeout=UNARY_TIMEOUT_S)
            return response
        except grpc.RpcError as error:
            raise_for(error, self.server, f"CancelJob {job_id}", job_id)

    def get_logs(self, job_id: str, since_sequence: int = 0, limit: int = 1000) -> pb.GetLogsResponse:
        request = pb.GetLogsRequest(job_id=job_id, since_sequence=since_sequence, limit=limit)
        try:
            response: pb.GetLogsResponse = self.logs.GetLogs(request, timeout=UNARY_TIMEOUT_S)
            return response
        except grpc.RpcError as error:
            raise_for(error, self.server, f"GetLogs {job_id}", job_id)

    def all_logs(self, job_id: str, since_sequence: int = 0, page_lines: int = 1000) -> Iterator[pb.JobLogEntry]:
        """Every stored line of the job after ``since_sequence``, oldest first, paged through
        GetLogs: the one pager of the grpcio client's users."""
        while True:
            response = self.get_logs(job_id, since_sequence=since_sequence, limit=page_lines)
            entries = list(response.entries)
            if since_sequence:  # a server that answers the same page again: not twice
                entries = [entry for entry in entries if entry.sequence > since_sequence]
            yield from entries
            # Such a server (or sequences that do not grow) would have us ask for ever:
            # what came is all there is.
            if not response.has_more or not entries or entries[-1].sequence <= since_sequence:
                return
            since_sequence = entries[-1].sequence

    def wait_final(self, job_id: str, deadline_s: float = 30.0, poll_s: float = 0.05) -> pb.GetJobResponse:
        """GetJob until the job is in a final state or ``deadline_s`` passed; the last answer.

        Used after a log stream ended, when a real platform may not have recorded the final
        status yet: a bounded wait, never a hang.
        """
        give_up = time.monotonic() + deadline_s
        while True:
            job = self.get_job(job_id)
            if job.status in FINAL_STATUSES or time.monotonic() >= give_up:
                return job
            time.sleep(poll_s)
