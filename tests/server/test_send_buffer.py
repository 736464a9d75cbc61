"""The send buffer the server asks for a connection on its Unix socket, wider than the
kernel's default (a replay's pages wait there while the follower reads), read off the
server's own accepted socket, found through /proc."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from hodei_stream.server.app import create_server
from hodei_stream.server.rpc import UNIX_SEND_BUFFER_BYTES
from hodei_stream.stream import http2

ANSWER_DEADLINE_S = 5.0


def accepted_send_buffer(path: Path) -> int | None:
    """SO_SNDBUF of the socket this process accepted on the Unix socket ``path``, or None
    before it has one: /proc/net/unix names an accepted socket by its listener's path, in
    state 03 (connected), and /proc/self/fd leads from its inode to the descriptor."""
    inodes = set()
    for row in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = row.split()
        if len(fields) >= 8 and fields[7] == str(path) and fields[5] == "03":
            inodes.add(f"socket:[{fields[6]}]")
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") in inodes:
                with socket.socket(fileno=os.dup(int(fd))) as accepted:
                    return accepted.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        except OSError:  # a descriptor closed meanwhile
            continue
    return None


def test_a_unix_connection_is_given_a_wider_send_buffer(home: Path) -> None:
    socket_path = home / "s.sock"
    with socket.socket(socket.AF_UNIX) as probe:
        default = probe.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)

    async def scenario() -> int | None:
        embedded, _ = await create_server(f"unix:{socket_path}", home / "state")
        try:
            reader, writer = await asyncio.open_unix_connection(str(socket_path))
            writer.write(http2.PREFACE + http2.frame(http2.SETTINGS, 0, 0))
            # The server's SETTINGS frame: it has taken the connection in (connection_made).
            settings = await asyncio.wait_for(reader.readexactly(9), ANSWER_DEADLINE_S)
            assert settings[3] == http2.SETTINGS, settings
            size = accepted_send_buffer(socket_path)
            writer.close()
            return size
        finally:
            await embedded.close()

    size = asyncio.run(scenario())
    assert size is not None, "the server's accepted socket was not found"
    # Linux doubles what is asked, up to twice net.core.wmem_max.
    wmem_max = int(Path("/proc/sys/net/core/wmem_max").read_text())
    assert size == min(2 * UNIX_SEND_BUFFER_BYTES, 2 * wmem_max) > default
