"""What the server and its clients both know of a machine: the state folder, its socket, the
environment variables that name a token and a CA bundle, and whether something answers at an
address.  Neutral ground: the server imports this and nothing client-side.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

ENV_HOME = "HODEI_STREAM_HOME"
# The token the server wants (sent as gRPC metadata), and the CA bundle that makes the connection TLS.
ENV_TOKEN = "HODEI_TOKEN"
ENV_TLS_CA = "HODEI_TLS_CA"
SOCKET_NAME = "server.sock"


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
        if target.startswith("unix:"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(timeout)
                probe.connect(target.removeprefix("unix:"))
        else:
            host, _, port = target.rpartition(":")
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                pass
    except (OSError, ValueError):
        return False
    return True
