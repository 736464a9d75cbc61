"""The one address type (hodei_stream/address.py): what parses to what, what is refused and
with which error, the loopback test and the spellings; then properties over any text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hodei_stream.address import Address, AddressError, NoSocketPath

PARSED = [
    ("127.0.0.1:50051", Address(host="127.0.0.1", port=50051)),
    ("localhost:0", Address(host="localhost", port=0)),
    ("hodei.example.com:443", Address(host="hodei.example.com", port=443)),
    ("[::1]:50051", Address(host="::1", port=50051)),
    ("[fe80::1%eth0]:7", Address(host="fe80::1%eth0", port=7)),
    ("::1:50051", Address(host="::1", port=50051)),  # unbracketed: the last colon ends the host
    ("host:65535", Address(host="host", port=65535)),
    ("host:007", Address(host="host", port=7)),
    ("unix:/tmp/hodei.sock", Address(path="/tmp/hodei.sock")),
    ("unix:///tmp/hodei.sock", Address(path="/tmp/hodei.sock")),
    ("unix:relative.sock", Address(path="relative.sock")),
    ("unix:~/hodei.sock", Address(path="~/hodei.sock")),
]

REFUSED = [
    ("unix:", NoSocketPath),
    ("unix://", NoSocketPath),
    ("", AddressError),
    ("no-port-here", AddressError),
    (":50051", AddressError),
    ("host:", AddressError),
    ("host:65536", AddressError),
    ("host:-1", AddressError),
    ("host:+1", AddressError),
    ("host: 1", AddressError),
    ("host:\N{FULLWIDTH DIGIT FIVE}", AddressError),
    ("[::1]", AddressError),
    ("[::1]50051", AddressError),
    ("[]:50051", AddressError),
    ("[a]b]:1", AddressError),
    ("a]:1", AddressError),
]


@pytest.mark.parametrize(("text", "address"), PARSED)
def test_parses(text: str, address: Address) -> None:
    assert Address.parse(text) == address


@pytest.mark.parametrize(("text", "error"), REFUSED)
def test_refuses(text: str, error: type[AddressError]) -> None:
    with pytest.raises(error) as raised:
        Address.parse(text)
    assert type(raised.value) is error
    assert "\n" not in str(raised.value) and repr(text) in str(raised.value)


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("127.0.0.1:1", "127.0.0.1:1"),
        ("[::1]:2", "[::1]:2"),
        ("::1:3", "[::1]:3"),
        ("host:004", "host:4"),
        ("unix:/s", "unix:/s"),
        ("unix:///s", "unix:/s"),
    ],
)
def test_target_is_the_grpcio_spelling(text: str, target: str) -> None:
    assert Address.parse(text).target == target


@pytest.mark.parametrize(
    ("text", "loopback"),
    [
        ("127.0.0.1:1", True),
        ("127.8.9.10:1", True),
        ("localhost:1", True),
        ("LocalHost:1", True),
        ("[::1]:1", True),
        ("[0:0:0:0:0:0:0:1]:1", True),
        ("10.0.0.1:1", False),
        ("0.0.0.0:1", False),
        ("[::]:1", False),
        ("hodei.example.com:1", False),
        ("localhost.example.com:1", False),
        ("unix:/tmp/s", False),  # private, but not a loopback TCP address
    ],
)
def test_is_loopback(text: str, loopback: bool) -> None:
    assert Address.parse(text).is_loopback() is loopback


@pytest.mark.parametrize(
    ("text", "recorded"),
    [
        ("localhost:1", "127.0.0.1:1"),
        ("LOCALHOST:1", "127.0.0.1:1"),
        ("[::1]:1", "[::1]:1"),
        ("Host.Example:1", "host.example:1"),
        ("unix:/Tmp/S", "unix:/Tmp/S"),
    ],
)
def test_recorded_spelling(text: str, recorded: str) -> None:
    assert Address.parse(text).recorded().target == recorded


def test_absolute_makes_only_a_socket_path_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", "/home/someone")
    assert Address.parse("unix:s.sock").absolute() == Address(path=os.path.join(str(tmp_path), "s.sock"))
    assert Address.parse("unix:~/s.sock").absolute() == Address(path="/home/someone/s.sock")
    assert Address.parse("unix:/a/../b.sock").absolute() == Address(path="/b.sock")
    assert Address.parse("host:1").absolute() == Address(host="host", port=1)


# Hosts as they are written: names, IPv4, IPv6 (any spelling ipaddress gives), never brackets.
HOSTS = st.one_of(
    st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,30}[A-Za-z0-9])?", fullmatch=True),
    st.ip_addresses().map(str),
    st.text(st.characters(blacklist_characters="[]", blacklist_categories=("Cs",)), min_size=1, max_size=20),
)
ADDRESSES = st.one_of(
    st.builds(lambda host, port: Address(host=host, port=port), HOSTS, st.integers(0, 65535)),
    st.builds(lambda path: Address(path=path), st.text(st.characters(blacklist_categories=("Cs",)), min_size=1)).filter(
        lambda address: not address.path.startswith("//")
    ),
)


@given(ADDRESSES)
def test_target_parses_back_to_the_same_address(address: Address) -> None:
    assert Address.parse(address.target) == address


@given(st.text(max_size=40) | st.builds(lambda a, b: f"{a}:{b}", st.text(max_size=20), st.text(max_size=8)))
def test_any_text_parses_or_raises_address_error(text: str) -> None:
    try:
        address = Address.parse(text)
    except AddressError:
        return
    assert Address.parse(address.target) == address
    assert address.is_unix or 0 <= address.port <= 65535


@given(ADDRESSES)
def test_recorded_is_a_spelling_of_the_same_listener(address: Address) -> None:
    recorded = address.recorded()
    assert recorded.recorded() == recorded
    assert recorded.port == address.port and recorded.is_unix == address.is_unix
    assert recorded.is_loopback() == address.is_loopback()
