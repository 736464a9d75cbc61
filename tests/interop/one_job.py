"""The one job every interop server serves, and how it serves it, in words both servers
(grpcio in Python, grpc-js in node) follow: the lines travel to node as a JSON file.

- GetJob: RUNNING until a SubscribeLogs stream has sent every line, COMPLETED after;
  NOT_FOUND for any other id.
- SubscribeLogs: the initial metadata promises exact sequences; the lines follow in small
  groups a few milliseconds apart, sequence ``GAP`` left out (so stream-logs must fetch it
  with GetLogs, as after a lost line); then the stream ends OK.
- GetLogs: the lines after ``since_sequence``, ``limit`` at a time, ``has_more`` set.
"""

from __future__ import annotations

import json
from pathlib import Path

JOB_ID = "5f0c4a8e-2b1d-4c3e-9f6a-7d8e9f0a1b2c"
GAP = 7
GROUP = 25  # lines sent together, then a short pause
# Text that a careless transport would change: non-ASCII, tabs, edge spaces, an empty line,
# a long line (spans HTTP/2 frames), stderr lines.
LINES: list[tuple[str, bool]] = [(f"n={number} · ünïcødé €\ttab  ", number % 10 == 3) for number in range(1, 301)]
LINES[40] = ("", False)
LINES[41] = ("x" * 40_000, False)
LINES[42] = ("  leading and trailing  ", True)


def write_lines(path: Path) -> Path:
    """The lines as JSON (``[[text, is_stderr], …]``) for the node server."""
    path.write_text(json.dumps(LINES))
    return path
