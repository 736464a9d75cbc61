"""``hodei-server run|start|stop|status [--listen ADDR]``: the embedded server's command.

- ``run`` serves in the foreground until SIGTERM or Ctrl+C, then stops cleanly.
- ``start`` starts ``run`` detached (log in ``server.log`` in the state folder) and returns
  once the server answers; a lock makes two concurrent starts start one server.
- ``stop`` asks the running server to stop (SIGTERM) and waits for it.  Jobs still running
  are cancelled (their whole process group is stopped) and end as CANCELLED.  With
  ``--keep-jobs`` (SIGUSR1) they keep running under their supervisors, which spool their
  lines and hand them to the next server (``start`` re-attaches them).  A server that is
  killed outright leaves its jobs running the same way.
- ``status`` says whether it runs (exit 0) or not (exit 1), and where.

The state folder is ``HODEI_STREAM_HOME`` (``hodei_stream.state_folder.state_home``); the running
server records its pid and address in ``server.json`` there.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hodei_stream.server.app import ListenAddressError, StateFolderError, create_server
from hodei_stream.server.security import Security
from hodei_stream.server.settings import ServerSettings
from hodei_stream.state_folder import (
    ENV_TOKEN,
    embedded_target,
    is_answering,
    state_home,
)

STATE_FILE_NAME = "server.json"
LOG_FILE_NAME = "server.log"
LOCK_FILE_NAME = "server.lock"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 30.0
# The signal that asks a running server to stop and leave its jobs running.
KEEP_JOBS_SIGNAL = signal.SIGUSR1


@dataclass(frozen=True)
class RunningServer:
    pid: int
    address: str


def running_server(home: Path) -> RunningServer | None:
    """The server recorded in ``home``, if its process lives and it answers."""
    try:
        state = json.loads((home / STATE_FILE_NAME).read_text())
        os.kill(state["pid"], 0)
    except (OSError, ValueError, KeyError):
        return None
    server = RunningServer(state["pid"], state["address"])
    return server if is_answering(server.address) else None


async def serve(address: str, home: Path, settings: ServerSettings, security: Security) -> None:
    server, bound_address = await create_server(address, home, settings, security)
    print(f"hodei-server: listening on {bound_address} (state in {home})", file=sys.stderr, flush=True)
    if not bound_address.startswith("unix:") and not security.token:
        print(f"hodei-server: warning: any local user can reach {bound_address} and run commands as you;"
              f" set {ENV_TOKEN} to require a token", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    keep_jobs = False

    def request_stop(keep: bool) -> None:
        nonlocal keep_jobs
        keep_jobs = keep
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop, False)
    loop.add_signal_handler(KEEP_JOBS_SIGNAL, request_stop, True)
    # Written last: once it exists the server has said what it had to and stops cleanly on
    # a signal (a stop that came sooner would have met the default handlers).
    state_file = home / STATE_FILE_NAME
    state_file.write_text(json.dumps({"pid": os.getpid(), "address": bound_address}))
    await stop.wait()
    what = "running jobs keep running; the next start re-attaches them" if keep_jobs else "running jobs are cancelled"
    print(f"hodei-server: stopping ({what})", file=sys.stderr, flush=True)
    await server.close(cancel_jobs=not keep_jobs)
    state_file.unlink(missing_ok=True)
    print("hodei-server: stopped", file=sys.stderr, flush=True)


def command_run(address: str, home: Path, settings: ServerSettings, security: Security) -> int:
    try:
        asyncio.run(serve(address, home, settings, security))
    except (ListenAddressError, StateFolderError, OSError) as error:
        print(f"hodei-server: {error}", file=sys.stderr)
        return 1
    return 0


def command_start(address: str, home: Path, run_options: list[str], token: str | None) -> int:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (home / LOCK_FILE_NAME).open("w") as lock:
        # A second `start` waits here for the first, then finds its server running.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if running := running_server(home):
            print(f"hodei-server: already running (pid {running.pid}) at {running.address}")
            return 0
        log_path = home / LOG_FILE_NAME
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "hodei_stream.server.daemon", "run", "--listen", address, *run_options],
                # The token goes by the environment: a command line is visible to every user.
                env={**os.environ, "HODEI_STREAM_HOME": str(home), **({ENV_TOKEN: token} if token else {})},
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd="/", start_new_session=True,  # detached: no terminal, not in our process group
            )
        give_up = time.monotonic() + START_TIMEOUT_S
        while (running := running_server(home)) is None or running.pid != process.pid:
            if process.poll() is not None:
                reason = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no reason given"]
                print(f"hodei-server: did not start: {reason[0].removeprefix('hodei-server: ')}", file=sys.stderr)
                return 1
            if time.monotonic() >= give_up:
                print(f"hodei-server: did not answer within {START_TIMEOUT_S:.0f}s; see {log_path}", file=sys.stderr)
                return 1
            time.sleep(0.02)
        print(f"hodei-server: running (pid {running.pid}) at {running.address}")
        return 0


def command_stop(home: Path, keep_jobs: bool) -> int:
    running = running_server(home)
    if running is None:
        print("hodei-server: not running")
        return 0
    os.kill(running.pid, KEEP_JOBS_SIGNAL if keep_jobs else signal.SIGTERM)
    give_up = time.monotonic() + STOP_TIMEOUT_S
    # Gone, or its state file removed (a stopped `run` whose parent has not reaped it yet).
    while running_server(home) is not None or (home / STATE_FILE_NAME).exists():
        if time.monotonic() >= give_up:
            print(f"hodei-server: pid {running.pid} did not stop within {STOP_TIMEOUT_S:.0f}s", file=sys.stderr)
            return 1
        time.sleep(0.02)
    print(f"hodei-server: stopped (pid {running.pid})" + ("; jobs left running" if keep_jobs else ""))
    return 0


def command_status(home: Path) -> int:
    if running := running_server(home):
        print(f"hodei-server: running (pid {running.pid}) at {running.address}, state in {home}")
        return 0
    print(f"hodei-server: not running (state in {home})")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hodei-server", description="The embedded Hodei-compatible server.")
    parser.add_argument("command", choices=["run", "start", "stop", "status"])
    parser.add_argument("--listen", metavar="ADDR",
                        help="unix:/path or a loopback host:port (default: a Unix socket in the state folder)")
    defaults = ServerSettings()
    parser.add_argument("--batch-capacity", type=int, default=defaults.batch_capacity,
                        help="lines a job's supervisor gathers before sending (default %(default)s)")
    parser.add_argument("--batch-flush-ms", type=float, default=defaults.batch_flush_interval_s * 1000,
                        help="longest a gathered line waits, in ms (default %(default)s)")
    parser.add_argument("--token", default=os.environ.get(ENV_TOKEN) or None,
                        help=f"require this token from clients (default ${ENV_TOKEN}; prefer the variable:"
                             " a command line is visible to other users)")
    parser.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve TLS with this certificate chain")
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="the private key of --tls-cert")
    parser.add_argument("--keep-jobs", action="store_true",
                        help="stop: leave running jobs running (the next start re-attaches them)"
                             " instead of cancelling them")
    parser.add_argument("--supervisor-linger", type=float, default=defaults.supervisor_linger_s, metavar="S",
                        help="how long a job's supervisor waits for an absent server after the job"
                             " ended, before it leaves the job's lines to the next server (default %(default)ss)")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    home = state_home()
    address = args.listen or embedded_target(home)
    if args.command == "run":
        settings = ServerSettings(batch_capacity=max(1, args.batch_capacity),
                                  batch_flush_interval_s=max(0.0, args.batch_flush_ms / 1000),
                                  supervisor_linger_s=max(0.0, args.supervisor_linger))
        return command_run(address, home, settings, Security(args.token, args.tls_cert, args.tls_key))
    if args.command == "start":
        run_options = ["--batch-capacity", str(args.batch_capacity), "--batch-flush-ms", str(args.batch_flush_ms),
                       "--supervisor-linger", str(args.supervisor_linger)]
        if args.tls_cert:
            run_options += ["--tls-cert", str(args.tls_cert.absolute()), "--tls-key", str(args.tls_key.absolute())]
        return command_start(address, home, run_options, args.token)
    if args.command == "stop":
        return command_stop(home, args.keep_jobs)
    return command_status(home)


if __name__ == "__main__":
    sys.exit(main())
