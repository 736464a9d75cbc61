"""A log line as the wire carries it: a ``JobLogEntry``, alone or as an encoded gRPC message.

SubscribeLogs sends each line of a job to every subscriber of the job, so a line is encoded
into its encoded message once and the bytes are shared (``store.JobLog`` keeps them beside the lines):
with 200 followers on a job, encoding per subscriber was most of the server's time.
"""

from __future__ import annotations

from collections.abc import Sequence

from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.records import LogLine


def log_entry(line: LogLine) -> pb.JobLogEntry:
    seconds, nanos = divmod(line.captured_ns, 1_000_000_000)
    return pb.JobLogEntry(
        job_id=line.job_id,
        line=line.text,
        is_stderr=line.is_stderr,
        timestamp={"seconds": seconds, "nanos": nanos},
        sequence=line.sequence,
    )


def encode_messages(lines: Sequence[LogLine]) -> list[bytes]:
    """Each line as one gRPC message: a 5-byte prefix (not compressed, length), then the
    serialized ``JobLogEntry``.  One message object is refilled for every line: building a
    new one (with its nested timestamp) per line costs twice as much."""
    entry = pb.JobLogEntry()
    stamp = entry.timestamp
    encoded: list[bytes] = []
    for line in lines:
        entry.job_id = line.job_id
        entry.line = line.text
        entry.is_stderr = line.is_stderr
        entry.sequence = line.sequence
        stamp.seconds, stamp.nanos = divmod(line.captured_ns, 1_000_000_000)
        payload = entry.SerializeToString()
        encoded.append(b"\x00" + len(payload).to_bytes(4, "big") + payload)
    return encoded
