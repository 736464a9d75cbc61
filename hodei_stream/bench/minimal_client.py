"""The benchmark's Python baseline: the least a grpcio client can do to follow a job's log.

    python -m hodei_stream.bench.minimal_client TARGET JOB_ID
    python -m hodei_stream.bench.minimal_client --streams N TARGET JOB_ID...

One channel, SubscribeLogs, ``print(entry.line, flush=True)`` per entry: the floor that
stream-logs' start-up and per-line cost are compared with.  ``--streams N`` is the
native client's mode of the same name in Python (fan-out and load followers when the native
client is not built): N followers in this process, follower i on ``JOB_ID[i % count]``, each
on its own channel and thread, printing ``<follower> <arrival_ns> <line>`` at the end.
"""

import sys
import threading
import time
from collections.abc import Iterator

import grpc

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.proto import hodei_pb2_grpc as pb_grpc


def entries(target: str, job_id: str, own_connection: bool = False) -> Iterator[pb.JobLogEntry]:
    # Channels with the same options share one connection otherwise.
    options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
    stub = pb_grpc.LogStreamServiceStub(grpc.insecure_channel(target, options=options))
    request = pb.SubscribeLogsRequest(job_id=job_id, include_history=True)
    return stub.SubscribeLogs(request)  # type: ignore[no-any-return]


def follow_many(count: int, target: str, job_ids: list[str]) -> int:
    recorded: list[list[tuple[int, str]]] = [[] for _ in range(count)]
    failures: list[str] = []

    def follow(number: int) -> None:
        kept = recorded[number]
        try:
            for entry in entries(target, job_ids[number % len(job_ids)], own_connection=True):
                kept.append((time.time_ns(), entry.line))
        except grpc.RpcError as error:
            failures.append(f"follower {number}: {error}")

    threads = [threading.Thread(target=follow, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for number, kept in enumerate(recorded):
        for arrived_ns, line in kept:
            print(number, arrived_ns, line)
    for failure in failures:
        print(f"minimal_client: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main() -> int:
    if sys.argv[1] == "--streams":
        return follow_many(int(sys.argv[2]), sys.argv[3], sys.argv[4:])
    for entry in entries(sys.argv[1], sys.argv[2]):
        print(entry.line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
