"""What ``hodei-server status`` asks the running server: its ``grpc.health.v1`` status, asked
the way every client asks (``endpoint.Route``: the token, TLS)."""

from __future__ import annotations

import asyncio

from grpclib.client import Channel
from grpclib.exceptions import GRPCError, StreamTerminatedError
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from hodei_stream.endpoint import ClientSettings, Route
from hodei_stream.state_folder import client_token


def store_not_serving(address: str, tls_ca: str | None) -> bool:
    """Whether the server says, through ``grpc.health.v1``, that it is not serving (its store
    cannot write).  False when it serves, or cannot be asked (a wrong token, no answer)."""
    return health_status(address, tls_ca) == HealthCheckResponse.NOT_SERVING


def health_status(address: str, tls_ca: str | None) -> HealthCheckResponse.ServingStatus.ValueType | None:
    """What the server's ``grpc.health.v1`` says of the whole server, None when it cannot be
    asked.  It is asked as any client asks it (``endpoint.Route``): with the token
    ``client_token`` gives, over TLS trusting ``tls_ca`` (``HODEI_TLS_CA``) on TCP."""
    address, token = client_token(address)
    try:
        route = Route.to(address, ClientSettings(token, tls_ca))
    except ValueError:
        return None
    if route.token_refused:
        return None

    async def check() -> HealthCheckResponse.ServingStatus.ValueType | None:
        if route.unix_path is not None:
            channel = Channel(path=route.unix_path)
        elif route.tls_ca:
            import ssl

            try:
                context = ssl.create_default_context(cafile=route.tls_ca)
            except (OSError, ssl.SSLError):
                return None
            context.set_alpn_protocols(["h2"])
            channel = Channel(route.host, route.port, ssl=context)
        else:
            channel = Channel(route.host, route.port)
        try:
            reply = await HealthStub(channel).Check(
                HealthCheckRequest(), metadata=route.authorization or None, timeout=5
            )
        except (OSError, GRPCError, asyncio.TimeoutError, StreamTerminatedError):
            return None
        finally:
            channel.close()
        return None if reply is None else reply.status

    return asyncio.run(check())
