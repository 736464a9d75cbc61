"""Fixtures for the embedded server's tests: a grpcio client on the ``server`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server


@pytest.fixture
def client(server: Server) -> Iterator[HodeiClient]:
    with HodeiClient(server) as hodei:
        yield hodei
