"""The benchmark's Python baseline: the least a grpcio client can do to follow a job's log.

    python -m hodei_stream.bench.minimal_client TARGET JOB_ID [--record]

One channel, SubscribeLogs, ``print(entry.line, flush=True)`` per entry: the floor that
stream-logs' start-up and per-line cost are compared with.  ``--record`` keeps
``<arrival_ns> <line>`` in memory and prints it all at the end (fan-out followers when the
native client is not built).
"""

import sys
import time

import grpc

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.proto import hodei_pb2_grpc as pb_grpc


def main() -> int:
    target, job_id = sys.argv[1], sys.argv[2]
    record = "--record" in sys.argv[3:]
    stub = pb_grpc.LogStreamServiceStub(grpc.insecure_channel(target))
    recorded: list[tuple[int, str]] = []
    for entry in stub.SubscribeLogs(pb.SubscribeLogsRequest(job_id=job_id, include_history=True)):
        if record:
            recorded.append((time.time_ns(), entry.line))
        else:
            print(entry.line, flush=True)
    for arrived_ns, line in recorded:
        print(arrived_ns, line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
