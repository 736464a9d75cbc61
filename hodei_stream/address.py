"""The address of a Hodei server, parsed once: ``host:port``, ``[v6]:port`` or ``unix:/path``.

The server parses where it listens and its clients where they dial with the same ``Address``;
its methods answer the questions both sides ask (is it a Unix socket, is it loopback, how does
grpcio spell it, which spelling does a loopback server record).  Only the lightest parts of
the standard library: stream-logs parses its server's address on the way to its first line.
"""

from __future__ import annotations

import os
from typing import NamedTuple

UNIX_PREFIX = "unix:"
# Host names a loopback server records as the address it binds.
LOOPBACK_NAMES = {"localhost": "127.0.0.1"}
HIGHEST_PORT = 65535


class AddressError(ValueError):
    """Text that is not ``host:port``, ``[v6]:port`` or ``unix:/path``."""


class NoSocketPath(AddressError):
    """``unix:`` with no path after it."""


class Address(NamedTuple):
    """A Unix socket (``path``) or a TCP ``host`` (without brackets) and ``port`` (0: any free one)."""

    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> Address:
        """``unix:/path`` (also ``unix://…``, ``unix:relative``), ``host:port`` or ``[v6]:port``
        with a port from 0 to 65535; else ``AddressError``.  Reads neither the file system nor
        the environment (see ``absolute``)."""
        if text.startswith(UNIX_PREFIX):
            path = text[len(UNIX_PREFIX) :].removeprefix("//")
            if not path:
                raise NoSocketPath(f"'{text}' names no socket path")
            return cls(path=path)
        if text.startswith("["):
            host, sep, port = text[1:].partition("]:")
        else:
            host, sep, port = text.rpartition(":")
        if not sep or not host or "[" in host or "]" in host:
            raise AddressError(f"'{text}' is not host:port, [v6]:port or unix:/path")
        if not (port.isascii() and port.isdigit()) or int(port) > HIGHEST_PORT:
            raise AddressError(f"'{text}' has no port from 0 to {HIGHEST_PORT}")
        return cls(host=host, port=int(port))

    @property
    def is_unix(self) -> bool:
        return bool(self.path)

    @property
    def target(self) -> str:
        """The spelling grpcio and this project's clients dial: ``unix:/path``, ``host:port``, ``[v6]:port``."""
        if self.is_unix:
            return f"{UNIX_PREFIX}{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def absolute(self) -> Address:
        """The same address with a Unix socket's path made absolute (``~`` expanded): the
        server runs from ``/``, and a client's relative path names the socket from where it runs."""
        if not self.is_unix:
            return self
        return self._replace(path=os.path.abspath(os.path.expanduser(self.path)))

    def recorded(self) -> Address:
        """The address as a loopback server records the one it binds: the host in lower case,
        ``localhost`` as ``127.0.0.1``.  Two spellings of one listener compare equal so."""
        if self.is_unix:
            return self
        host = self.host.lower()
        return self._replace(host=LOOPBACK_NAMES.get(host, host))

    def is_loopback(self) -> bool:
        """Whether this is a TCP address on this machine only (127.0.0.0/8, ::1, localhost)."""
        if self.is_unix:
            return False
        import ipaddress  # only for a TCP address: not on the way of a Unix socket's first line

        try:
            return ipaddress.ip_address(self.recorded().host).is_loopback
        except ValueError:
            return False
