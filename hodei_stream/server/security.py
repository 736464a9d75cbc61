"""Who may talk to the embedded server: a token, TLS, and where it may listen.

The server runs commands for its user, so by default only that user can reach it (a Unix
socket, mode 0600, in a 0700 folder).  TCP on loopback is allowed, though any local user can
connect there unless a token is required.  Any other address needs both a token (clients
send ``authorization: Bearer <token>`` as gRPC metadata, from ``HODEI_TOKEN``) and TLS, so
that the token never crosses a network in clear.  The token is compared in constant time
and never logged, nor passed on to jobs or supervisors.
"""

from __future__ import annotations

import hmac
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import grpclib.server
from grpclib import GRPCError, Status
from grpclib.events import RecvRequest, listen

AUTHORIZATION_KEY = "authorization"


@dataclass(frozen=True)
class Security:
    token: str | None = field(default=None, repr=False)  # never in a repr, hence never in a log
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context (HTTP/2 by ALPN, as gRPC requires), None without TLS."""
        if self.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_cert, self.tls_key)
        context.set_alpn_protocols(["h2"])
        return context


def require_token(server: grpclib.server.Server, token: str) -> None:
    """Answer every call without ``authorization: Bearer <token>`` UNAUTHENTICATED."""
    expected = f"Bearer {token}".encode()

    async def check(event: RecvRequest) -> None:
        presented = str(event.metadata.get(AUTHORIZATION_KEY, "")).encode()
        if not hmac.compare_digest(presented, expected):
            raise GRPCError(Status.UNAUTHENTICATED, "a valid token is required (authorization: Bearer …)")

    listen(server, RecvRequest, check)
