"""What the server and its clients both know of a machine: the state folder, its socket, the
environment variables that name a token and a CA bundle, which token a client sends where
(``client_token``), and whether something answers at an address.  Neutral ground: the server
imports this and nothing client-side.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from hodei_stream.address import Address

if TYPE_CHECKING:
    from pathlib import Path

ENV_HOME = "HODEI_STREAM_HOME"
# The token the server wants (sent as gRPC metadata), and the CA bundle that makes the connection TLS.
ENV_TOKEN = "HODEI_TOKEN"
ENV_TLS_CA = "HODEI_TLS_CA"
SOCKET_NAME = "server.sock"
# The running server's pid, address and who may reach it (``ACCESS_*``); written by the server.
STATE_FILE_NAME = "server.json"
# The token a loopback TCP server requires when none is given (mode 0600, kept across restarts).
TOKEN_FILE_NAME = "token"
# How clients reach the running server, as ``server.json`` records it.
ACCESS_SOCKET = "socket"  # a Unix socket: only its user (mode 0600)
ACCESS_TOKEN_FILE = "token file"  # the token in TOKEN_FILE_NAME
ACCESS_TOKEN = "token"  # the token it was started with (HODEI_TOKEN)
ACCESS_OPEN = "open"  # TCP with no token (--no-token): any local user


def state_home() -> Path:
    """The embedded server's state folder: ``HODEI_STREAM_HOME``, else the XDG state folder."""
    from pathlib import Path

    return Path(_state_home())


def _state_home() -> str:
    # In os.path, not pathlib: stream-logs finds its server without importing pathlib (start-up).
    if home := os.environ.get(ENV_HOME):
        return os.path.abspath(os.path.expanduser(home))
    xdg = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(os.path.abspath(os.path.expanduser(xdg)), "hodei-stream")


def embedded_target(home: Path | None = None) -> str:
    return f"unix:{os.path.join(home or _state_home(), SOCKET_NAME)}"


def is_answering(target: str, timeout: float = 1.0) -> bool:
    """True when something accepts connections at ``unix:/path`` or ``host:port`` (a plain
    connect, no gRPC)."""
    try:
        address = Address.parse(target)
        if address.is_unix:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(timeout)
                probe.connect(address.path)
        else:
            with socket.create_connection((address.host, address.port), timeout=timeout):
                pass
    except (OSError, ValueError):  # (ValueError: no address, or a NUL in a path)
        return False
    return True


def read_in_folder(folder: int, name: str) -> bytes | None:
    """The content of ``name`` in the opened state folder (no symlink followed), or None."""
    try:
        descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        return file.read()


def client_token(target: str) -> tuple[str, str | None]:
    """The one rule for the token a client sends: ``(the target to dial, the token or None)``.

    ``HODEI_TOKEN`` when set.  Else, for TCP, the token of this user's server at that address:
    the state folder (``HODEI_STREAM_HOME``) records, in ``server.json``, that a live process
    serves that address and keeps its token in the folder's token file.  The target is then
    the address as recorded (``localhost`` becomes ``127.0.0.1``), so that a name that also
    resolves to another address cannot lead the token to a listener there.  A Unix socket
    needs none and reads nothing."""
    if token := os.environ.get(ENV_TOKEN):
        return target, token
    if target.startswith("unix:"):
        return target, None
    import json  # only on the way to a TCP server without HODEI_TOKEN (stream-logs' start-up)

    try:
        folder = os.open(_state_home(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return target, None
    try:
        if os.fstat(folder).st_uid != os.geteuid():
            return target, None
        state = json.loads(read_in_folder(folder, STATE_FILE_NAME) or b"")
        address = state["address"]
        if (
            state.get("access") != ACCESS_TOKEN_FILE
            or Address.parse(address).recorded() != Address.parse(target).recorded()
        ):
            return target, None
        os.kill(state["pid"], 0)  # a live process (for a user other than root: one of ours)
        token = (read_in_folder(folder, TOKEN_FILE_NAME) or b"").decode().strip()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return target, None
    finally:
        os.close(folder)
    return (address, token) if token else (target, None)
