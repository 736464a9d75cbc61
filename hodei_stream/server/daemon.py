"""``hodei-server run|start|stop|status [--listen ADDR]``: the embedded server's command.

- ``run`` serves in the foreground until SIGTERM or Ctrl+C, then stops cleanly.
- ``start`` starts ``run`` detached (log in ``server.log`` in the state folder) and returns
  once the server answers; when a server already serves the folder at the same address it
  says so and succeeds (so concurrent first uses start one server).
- ``stop`` asks the running server to stop (SIGTERM) and waits for it.  Jobs still running
  are cancelled (their whole process group is stopped) and end as CANCELLED.  With
  ``--keep-jobs`` (SIGUSR1) they keep running under their supervisors, which spool their
  lines and hand them to the next server (``start`` re-attaches them).  A server that is
  killed outright leaves its jobs running the same way.
- ``status`` says whether it runs (exit 0) or not (exit 1), where, and who can reach it.

On loopback TCP the server requires a token: ``HODEI_TOKEN`` if given, else the state
folder's token file (``security.folder_token``), which the same user's clients find through
``server.json`` (``state_folder.client_token``).  ``--no-token`` (or ``HODEI_NO_TOKEN=1``)
serves with none, and ``start`` says on the terminal what that means.

One server per state folder (``HODEI_STREAM_HOME``, ``hodei_stream.state_folder.state_home``):
the server holds an exclusive ``flock`` on ``server.lock`` for its whole life (the kernel
drops it when the process dies, however it dies), and records its pid, address and who may
reach it (``state_folder.ACCESS_*``) in ``server.json``; only the lock's holder writes or
removes ``server.json`` and the sockets.
A second ``run`` (or a ``start`` for another address) exits 1 naming the running server.
``start`` takes the lock itself and hands it to the ``run`` it spawns (an inherited
descriptor shares the lock), so no other server slips in between.  The folder is checked
(``security.open_state_folder``) before anything is opened in it.

Exit statuses: 0 done; 1 the server cannot run (folder refused or not writable, another
server, address taken, TLS files unreadable, did not start); 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from hodei_stream.address import HIGHEST_PORT, Address, AddressError, NoSocketPath
from hodei_stream.command_line import UsageParser, installed_version
from hodei_stream.own_python import module_command
from hodei_stream.server.app import ListenAddressError, StateFolderError, create_server
from hodei_stream.server.health_probe import store_not_serving
from hodei_stream.server.security import (
    Security,
    TLSFilesError,
    UnsafeStateFolder,
    folder_token,
    open_in_folder,
    open_state_folder,
)
from hodei_stream.server.settings import ServerSettings
from hodei_stream.server.state_lock import RunningServer, StateLock, running_server
from hodei_stream.state_folder import (
    ACCESS_OPEN,
    ACCESS_SOCKET,
    ACCESS_TOKEN,
    ACCESS_TOKEN_FILE,
    ENV_TLS_CA,
    ENV_TOKEN,
    STATE_FILE_NAME,
    TOKEN_FILE_NAME,
    embedded_target,
    read_in_folder,
    state_home,
)

# Set (to anything but empty or 0), the same as ``--no-token`` on ``run`` and ``start``.
ENV_NO_TOKEN = "HODEI_NO_TOKEN"
LOG_FILE_NAME = "server.log"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 30.0
# The signal that asks a running server to stop and leave its jobs running.
KEEP_JOBS_SIGNAL = signal.SIGUSR1
# How much of server.log's end ``start`` reads to quote why its server did not start.
LOG_TAIL_BYTES = 4096


class ServerRefused(Exception):
    """This server cannot run; the message is one line for the user (exit 1)."""


def access_for(address: str, security: Security, no_token: bool) -> str:
    """Who may reach a server at ``address`` (``ACCESS_*``): on loopback TCP with no token
    given and no opt-out, the holders of the state folder's token file."""
    if address.startswith("unix:"):
        return ACCESS_SOCKET
    if security.token:
        return ACCESS_TOKEN
    if no_token or not Address.parse(address).is_loopback():  # (elsewhere no token at all: refused at listening)
        return ACCESS_OPEN
    return ACCESS_TOKEN_FILE


def reach(running: RunningServer, home: Path) -> str:
    """``(pid …) at ADDRESS: who can reach it``, for the line ``start`` and ``status`` print."""
    who = {
        ACCESS_SOCKET: "only you can reach it (a socket of mode 0600)",
        ACCESS_TOKEN_FILE: f"token required (in {home / TOKEN_FILE_NAME}, readable only by you)",
        ACCESS_TOKEN: f"token required (the {ENV_TOKEN} it was started with)",
        ACCESS_OPEN: "no token (--no-token): any local user can reach it and run commands as you",
    }.get(running.access or "")
    return f"(pid {running.pid}) at {running.address}" + (f": {who}" if who else "")


async def serve(
    address: str, home: Path, folder: int, settings: ServerSettings, security: Security, access: str
) -> None:
    server, bound_address = await create_server(address, home, settings, security)
    socket_path = bound_address.removeprefix("unix:") if bound_address.startswith("unix:") else None
    # Ours to remove at the end: the very socket file we bound, not one put there since.
    socket_identity = os.stat(socket_path).st_ino if socket_path else None
    print(f"hodei-server: listening on {bound_address} (state in {home})", file=sys.stderr, flush=True)
    if access == ACCESS_OPEN:
        print(
            f"hodei-server: warning: no token (--no-token): any local user can reach {bound_address}"
            " and run commands as you",
            file=sys.stderr,
            flush=True,
        )
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
    state = open_in_folder(folder, STATE_FILE_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(state, "w") as state_file:
        state_file.write(json.dumps({"pid": os.getpid(), "address": bound_address, "access": access}))
    # What start-up made (modules, the store's records) lives as long as the server: moved out
    # of the cyclic collector's sight, so that its full collections, which a crowd of new
    # followers sets off, scan what came since (~1 ms) instead of all of it (22-47 ms measured,
    # during which no line goes out).
    gc.freeze()
    await stop.wait()
    what = "running jobs keep running; the next start re-attaches them" if keep_jobs else "running jobs are cancelled"
    print(f"hodei-server: stopping ({what})", file=sys.stderr, flush=True)
    await server.close(cancel_jobs=not keep_jobs)
    if socket_path:
        try:
            if os.stat(socket_path).st_ino == socket_identity:
                os.unlink(socket_path)
        except FileNotFoundError:
            pass
    os.unlink(STATE_FILE_NAME, dir_fd=folder)
    print("hodei-server: stopped", file=sys.stderr, flush=True)


def unusable_folder(home: Path, error: OSError) -> ServerRefused:
    return ServerRefused(
        f"the state folder {home} is not usable ({error.strerror or error});"
        " set HODEI_STREAM_HOME to a folder you can write"
    )


def command_run(
    address: str, home: Path, settings: ServerSettings, security: Security, no_token: bool, inherited_lock: int | None
) -> int:
    logging.basicConfig(format="hodei-server: %(message)s")  # (stderr: server.log under ``start``)
    logging.getLogger("hodei_stream").setLevel(logging.INFO)
    try:
        security.ssl_context()  # unreadable TLS files are named before anything starts
        folder = open_state_folder(home, create=True)
        assert folder is not None  # (created)
        try:
            lock = StateLock(folder, inherited_lock)
        except OSError as error:
            raise unusable_folder(home, error) from None
        if not lock.try_acquire():
            raise ServerRefused(f"another server already serves the state folder {home} ({lock.holder()})")
        lock.record_holder()
        access = access_for(address, security, no_token)
        if access == ACCESS_TOKEN_FILE:
            security = replace(security, token=folder_token(folder, home))
        asyncio.run(serve(address, home, folder, settings, security, access))
    except (ServerRefused, UnsafeStateFolder, TLSFilesError, ListenAddressError, StateFolderError) as error:
        print(f"hodei-server: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # binding the address (in use, not ours to bind)
        where = f" ({error.filename})" if error.filename else ""
        print(f"hodei-server: cannot serve at {address}: {error.strerror or error}{where}", file=sys.stderr)
        return 1
    return 0


def log_tail(log: int) -> str:
    """The last line of ``server.log``, where a server that did not start said why."""
    size = os.fstat(log).st_size
    text = os.pread(log, LOG_TAIL_BYTES, max(0, size - LOG_TAIL_BYTES)).decode(errors="replace")
    return (text.strip().splitlines() or ["no reason given"])[-1].removeprefix("hodei-server: ")


def command_start(
    address: str, home: Path, run_options: list[str], security: Security, environ: Mapping[str, str]
) -> int:
    """``start``: a detached ``run`` (it inherits ``environ``), once the lock is ours; the exit status."""
    try:
        folder, lock, log = open_for_start(home, security)
    except (ServerRefused, UnsafeStateFolder, TLSFilesError) as error:
        print(f"hodei-server: {error}", file=sys.stderr)
        return 1
    give_up = time.monotonic() + START_TIMEOUT_S
    if (status := wait_for_lock(lock, folder, address, home, give_up)) is not None:
        return status
    process = spawn_run(address, home, run_options, security, environ, lock, log)
    lock.close()  # the server's copy holds the lock now, for as long as it lives
    return wait_for_answer(process, folder, home, log, give_up)


def open_for_start(home: Path, security: Security) -> tuple[int, StateLock, int]:
    """What ``start`` needs before it may start a server: the checked state folder, its lock
    (not yet taken) and ``server.log``; refused with a reason for the user."""
    security.ssl_context()  # named here, not only in server.log
    folder = open_state_folder(home, create=True)
    assert folder is not None  # (created)
    try:
        lock = StateLock(folder)
        log = open_in_folder(folder, LOG_FILE_NAME, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    except OSError as error:
        raise unusable_folder(home, error) from None
    return folder, lock, log


def wait_for_lock(lock: StateLock, folder: int, address: str, home: Path, give_up: float) -> int | None:
    """Take the state folder's lock; another start may be under way, so wait for its server
    to answer or for the lock.  None once the lock is ours, else the exit status: 0 when a
    server already serves the folder at ``address``, 1 when another holds it."""
    while not lock.try_acquire():
        if running := running_server(folder):
            if running.address != address:
                print(
                    f"hodei-server: another server already serves the state folder {home}"
                    f" (pid {running.pid}, at {running.address})",
                    file=sys.stderr,
                )
                return 1
            print(f"hodei-server: already running {reach(running, home)}")
            return 0
        if time.monotonic() >= give_up:
            print(f"hodei-server: another server holds the state folder {home} ({lock.holder()})", file=sys.stderr)
            return 1
        time.sleep(0.02)
    return None


def spawn_run(
    address: str,
    home: Path,
    run_options: list[str],
    security: Security,
    environ: Mapping[str, str],
    lock: StateLock,
    log: int,
) -> subprocess.Popen[bytes]:
    """``run``, detached, handed the lock already taken; its output goes to ``server.log``."""
    return subprocess.Popen(
        [
            *module_command("hodei_stream.server.daemon"),
            "run",
            "--listen",
            address,
            *run_options,
            "--lock-fd",
            str(lock.descriptor),
        ],
        # The token goes by the environment: a command line is visible to every user.
        env={**environ, "HODEI_STREAM_HOME": str(home), **({ENV_TOKEN: security.token} if security.token else {})},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        pass_fds=(lock.descriptor,),
        cwd="/",
        start_new_session=True,  # detached: no terminal, not in our process group
    )


def wait_for_answer(process: subprocess.Popen[bytes], folder: int, home: Path, log: int, give_up: float) -> int:
    """Wait until the spawned server records itself as serving (exit status 0), or gives up
    or ends first (1, with why)."""
    while (running := running_server(folder)) is None or running.pid != process.pid:
        if process.poll() is not None:
            print(f"hodei-server: did not start: {log_tail(log)}", file=sys.stderr)
            return 1
        if time.monotonic() >= give_up:
            print(
                f"hodei-server: did not answer within {START_TIMEOUT_S:.0f}s; see {home / LOG_FILE_NAME}",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.02)
    print(f"hodei-server: running {reach(running, home)}")
    return 0


def command_stop(home: Path, keep_jobs: bool) -> int:
    folder = open_state_folder(home, create=False)  # (stop and status create nothing)
    running = running_server(folder) if folder is not None else None
    if folder is None or running is None:
        print("hodei-server: not running")
        return 0
    os.kill(running.pid, KEEP_JOBS_SIGNAL if keep_jobs else signal.SIGTERM)
    give_up = time.monotonic() + STOP_TIMEOUT_S
    # Gone, or its state file removed (a stopped `run` whose parent has not reaped it yet).
    while running_server(folder) is not None or read_in_folder(folder, STATE_FILE_NAME) is not None:
        if time.monotonic() >= give_up:
            print(f"hodei-server: pid {running.pid} did not stop within {STOP_TIMEOUT_S:.0f}s", file=sys.stderr)
            return 1
        time.sleep(0.02)
    print(f"hodei-server: stopped (pid {running.pid})" + ("; jobs left running" if keep_jobs else ""))
    return 0


def command_status(home: Path) -> int:
    folder = open_state_folder(home, create=False)  # (stop and status create nothing)
    if folder is not None and (running := running_server(folder)):
        print(f"hodei-server: running {reach(running, home)}; state in {home}")
        if store_not_serving(running.address, os.environ.get(ENV_TLS_CA) or None):
            print(f"hodei-server: its store cannot write (health: NOT_SERVING); the cause is in {home / LOG_FILE_NAME}")
        return 0
    print(f"hodei-server: not running (state in {home})")
    return 1


def listen_address(value: str) -> str:
    """``--listen``: ``unix:PATH`` (made absolute: the server runs from /) or ``host:port``
    (``[v6]:port``), in the address's one spelling."""
    try:
        return Address.parse(value).absolute().target
    except NoSocketPath:
        raise argparse.ArgumentTypeError("'unix:' needs a path, e.g. unix:/tmp/hodei.sock") from None
    except AddressError:
        raise argparse.ArgumentTypeError(
            f"'{value}' is not unix:/path or host:port with a port from 0 to {HIGHEST_PORT}"
        ) from None


def build_parser(environ: Mapping[str, str]) -> UsageParser:
    """``hodei-server``'s command line; ``environ`` gives the token options' defaults."""
    parser = UsageParser(prog="hodei-server", description="The embedded Hodei-compatible server.")
    version = installed_version() or "unknown (not installed)"
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {version}")
    parser.add_argument("command", choices=["run", "start", "stop", "status"])
    parser.add_argument(
        "--listen",
        metavar="ADDR",
        type=listen_address,
        help="unix:/path or a loopback host:port (default: a Unix socket in the state folder)",
    )
    defaults = ServerSettings()
    parser.add_argument(
        "--batch-capacity",
        type=int,
        default=defaults.batch_capacity,
        help="lines a job's supervisor gathers before sending (default %(default)s)",
    )
    parser.add_argument(
        "--batch-flush-ms",
        type=float,
        default=defaults.batch_flush_interval_s * 1000,
        help="longest a gathered line waits, in ms (default %(default)s)",
    )
    add_access_options(parser, environ)
    parser.add_argument(
        "--keep-jobs",
        action="store_true",
        help="stop: leave running jobs running (the next start re-attaches them) instead of cancelling them",
    )
    parser.add_argument(
        "--supervisor-linger",
        type=float,
        default=defaults.supervisor_linger_s,
        metavar="S",
        help="how long a job's supervisor waits for an absent server after the job"
        " ended, before it leaves the job's lines to the next server (default %(default)ss)",
    )
    # `start` hands the state folder's lock, already taken, to the `run` it spawns.
    parser.add_argument("--lock-fd", type=int, help=argparse.SUPPRESS)
    return parser


def add_access_options(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Who may reach the server: the token (defaults from ``environ``) and TLS."""
    parser.add_argument(
        "--token",
        default=environ.get(ENV_TOKEN) or None,
        help=f"require this token from clients (default ${ENV_TOKEN}; prefer the variable:"
        " a command line is visible to other users)",
    )
    parser.add_argument(
        "--no-token",
        action="store_true",
        default=environ.get(ENV_NO_TOKEN, "") not in ("", "0"),
        help=f"run, start: on loopback TCP, require no token (default ${ENV_NO_TOKEN}): any local user"
        " can then run commands as you",
    )
    parser.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve TLS with this certificate chain")
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="the private key of --tls-cert")


def parse_arguments(argv: list[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    """The command line, parsed and checked: options that contradict each other are a usage error."""
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.no_token and args.token and args.command in ("run", "start"):
        parser.error(f"--no-token (or {ENV_NO_TOKEN}) and a token ({ENV_TOKEN} or --token) contradict each other")
    return args


def run_settings(args: argparse.Namespace) -> ServerSettings:
    """The server's tunables as ``run`` was given them (out-of-range values clamped)."""
    return ServerSettings(
        batch_capacity=max(1, args.batch_capacity),
        batch_flush_interval_s=max(0.0, args.batch_flush_ms / 1000),
        supervisor_linger_s=max(0.0, args.supervisor_linger),
    )


def run_options(args: argparse.Namespace, security: Security) -> list[str]:
    """The options ``start`` hands on to the ``run`` it spawns (the token goes by the environment)."""
    options = [
        "--batch-capacity",
        str(args.batch_capacity),
        "--batch-flush-ms",
        str(args.batch_flush_ms),
        "--supervisor-linger",
        str(args.supervisor_linger),
    ]
    if args.tls_cert:
        options += ["--tls-cert", str(security.tls_cert), "--tls-key", str(security.tls_key)]
    if args.no_token:
        options.append("--no-token")
    return options


def main(argv: list[str] | None = None) -> int:
    """``hodei-server``: its environment is read here, once, and handed on."""
    environ = dict(os.environ)
    args = parse_arguments(argv, environ)
    home = state_home()
    address = args.listen or listen_address(embedded_target(home))  # (one spelling for each address)
    tls = (args.tls_cert.absolute(), args.tls_key.absolute()) if args.tls_cert else (None, None)
    security = Security(args.token, *tls)
    try:
        if args.command == "run":
            return command_run(address, home, run_settings(args), security, args.no_token, args.lock_fd)
        if args.command == "start":
            return command_start(address, home, run_options(args, security), security, environ)
        if args.command == "stop":
            return command_stop(home, args.keep_jobs)
        return command_status(home)
    except UnsafeStateFolder as error:
        print(f"hodei-server: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
