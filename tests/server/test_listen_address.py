"""``hodei-server --listen``: parsed by the one address type, spelled one way, refused in
the daemon's own two messages."""

from __future__ import annotations

import argparse
import os

import pytest

from hodei_stream.server.daemon import listen_address


@pytest.mark.parametrize(
    ("given", "spelled"),
    [
        ("unix:/tmp/a.sock", "unix:/tmp/a.sock"),
        ("unix:///tmp/a.sock", "unix:/tmp/a.sock"),
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("[::1]:5000", "[::1]:5000"),
        ("localhost:5000", "localhost:5000"),
    ],
)
def test_spelled_one_way(given: str, spelled: str) -> None:
    assert listen_address(given) == spelled


def test_a_relative_socket_path_is_made_absolute() -> None:
    assert listen_address("unix:rel.sock") == f"unix:{os.path.abspath('rel.sock')}"


def test_no_socket_path() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"^'unix:' needs a path, e\.g\. unix:/tmp/hodei\.sock$"):
        listen_address("unix:")


@pytest.mark.parametrize("given", ["x", ":5", "h:", "h:65536", "h:-1", "h:\u0663"])
def test_not_an_address(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        listen_address(given)
    assert str(refused.value) == f"'{given}' is not unix:/path or host:port with a port from 0 to 65535"
