"""The stand-in's command line: ``python -m tests.platform_standin --ready-file FILE [options]``.

It listens on ``--listen`` (``127.0.0.1:0`` by default, plaintext as the platform; or
``unix:/path``), writes the address it bound (``127.0.0.1:PORT``) to the ready file, and serves
until SIGTERM or SIGINT, then kills every job it started.  Exit status 3: jobs cannot be run
elsewhere here (``unshare --mount`` needs root); 2: bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .grpclib_reach import PingPolicy, PlatformServer
from .jobs import JobExecutionServicer
from .logs import CHANNEL_CAPACITY, LogService, LogStreamServicer
from .worker import Workers, WorkerSettings

CANNOT_RUN_ELSEWHERE = 3


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.platform_standin", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT or unix:PATH (default 127.0.0.1:0)")
    parser.add_argument("--ready-file", type=Path, required=True, help="gets the bound address once serving")
    parser.add_argument("--hide", type=Path, action="append", default=[], help="a path jobs must not see (repeatable)")
    parser.add_argument("--provisioning-delay", type=float, default=0.5, help="seconds a job stays PENDING")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=positive_int(os.environ.get("HODEI_LOG_BATCH_SIZE", "100")),
        help="lines per batch (default: HODEI_LOG_BATCH_SIZE, else 100)",
    )
    parser.add_argument(
        "--flush-interval-ms",
        type=positive_int,
        default=positive_int(os.environ.get("HODEI_LOG_FLUSH_INTERVAL", "250")),
        help="milliseconds between the worker's flushes (default: HODEI_LOG_FLUSH_INTERVAL, else 250)",
    )
    parser.add_argument(
        "--clock-resolution-ms", type=float, default=0.0, help="the worker clock's tick (default: 1 ns)"
    )
    parser.add_argument("--ping-interval", type=float, default=300.0, help="grpc-core's minimum PING interval, s")
    parser.add_argument(
        "--channel-capacity",
        type=positive_int,
        default=CHANNEL_CAPACITY,
        help=f"entries each subscription's channels hold (default {CHANNEL_CAPACITY}, the platform's)",
    )
    parser.add_argument(
        "--true-sequences",
        action="store_true",
        help="SubscribeLogs sends every line with its true sequence (gentler than the platform)",
    )
    arguments = parser.parse_args(argv)
    for path in arguments.hide:
        if not path.is_dir():
            parser.error(f"--hide {path}: not a folder")
    return arguments


def unshare_refusal(workers_folder: Path) -> str:
    """Why jobs cannot run in a mount namespace of their own here, or "" if they can."""
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    try:
        probe = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "mount",
                "-t",
                "tmpfs",
                "probe",
                str(workers_folder),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unshare --mount: {error}"
    return "" if probe.returncode == 0 else f"unshare --mount (needs root): {probe.stderr.strip()}"


async def serve(arguments: argparse.Namespace, workers_folder: Path) -> None:
    workers = Workers(
        WorkerSettings(
            hidden_paths=tuple(path.resolve() for path in arguments.hide),
            workers_folder=workers_folder,
            batch_size=arguments.batch_size,
            flush_interval_s=arguments.flush_interval_ms / 1000,
            clock_resolution_ns=max(1, round(arguments.clock_resolution_ms * 1_000_000)),
        )
    )
    logs = LogService(arguments.channel_capacity)
    server = PlatformServer(
        [
            JobExecutionServicer(logs, workers, arguments.provisioning_delay),
            LogStreamServicer(logs, arguments.true_sequences),
        ],
        PingPolicy(interval_s=arguments.ping_interval),
    )
    if arguments.listen.startswith("unix:"):
        path = arguments.listen.removeprefix("unix:")
        await server.start(path=path)
        address = f"unix:{path}"
    else:
        host, _, port = arguments.listen.rpartition(":")
        await server.start(host, int(port))
        address = server.bound_address()
    ready = arguments.ready_file.with_name(arguments.ready_file.name + ".tmp")
    ready.write_text(address + "\n")
    ready.rename(arguments.ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        await stop.wait()
    finally:
        workers.kill_all()
        server.close()


def main(argv: list[str]) -> int:
    arguments = options(argv)
    workers_folder = Path(tempfile.mkdtemp(prefix="hodei-workers-"))
    try:
        refusal = unshare_refusal(workers_folder)
        if refusal:
            print(f"platform stand-in: cannot run jobs elsewhere: {refusal}", file=sys.stderr)
            return CANNOT_RUN_ELSEWHERE
        asyncio.run(serve(arguments, workers_folder))
        return 0
    finally:
        workers_folder.rmdir()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
