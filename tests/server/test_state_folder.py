"""The state folder as ``hodei-server`` meets it: one server per folder, a folder someone
else could have prepared, a read-only one, what ``stop`` leaves behind, and bad options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from server_helpers import hodei_server, shell_job

from hodei_stream.client import HodeiClient
from hodei_stream.endpoint import Server
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.state_folder import embedded_target

Launch = Callable[..., Any]
WaitUntil = Callable[..., Any]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's only line on stderr (no traceback, nothing else)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_second_server_on_the_folder_is_refused_and_takes_nothing(
    home: Path, launch_server: Launch, wait_until: WaitUntil
) -> None:
    first = launch_server(home)
    # (Written just after the socket answers.)
    state = wait_until(
        lambda: (home / "server.json").exists() and (home / "server.json").read_text(), what="server.json"
    )
    pid, address = json.loads(state)["pid"], json.loads(state)["address"]
    for args in (
        ["run"],
        ["run", "--listen", "127.0.0.1:0"],
        ["start", "--listen", "127.0.0.1:0"],
        ["start", "--listen", f"unix:{home}/other.sock"],
    ):
        result = hodei_server(*args, home=home)
        assert result.returncode == 1, (args, result.stderr)
        line = one_line(result)
        assert f"pid {pid}" in line and address in line, line
    # `start` for the address already served is not an error (concurrent first uses).
    again = hodei_server("start", home=home)
    assert again.returncode == 0 and "already running" in again.stdout
    # The first server still has its state, its socket and its supervisors' socket.
    assert (home / "server.json").read_text() == state
    assert not (home / "other.sock").exists()
    with HodeiClient(first.server) as client:
        assert client.wait_final(shell_job(client, "echo still mine")).status == pb.JOB_STATUS_COMPLETED
    assert first.stop() == 0


def test_stop_leaves_no_socket_and_the_folder_holds_what_the_readme_says(home: Path) -> None:
    assert hodei_server("start", home=home).returncode == 0
    pid = json.loads((home / "server.json").read_text())["pid"]
    assert (home / "server.lock").read_text() == str(pid)
    with HodeiClient(Server(embedded_target(home), embedded=True)) as client:
        assert client.wait_final(shell_job(client, "true")).status == pb.JOB_STATUS_COMPLETED
    assert hodei_server("stop", home=home).returncode == 0
    left = {path.name for path in home.iterdir()}
    assert not left & {"server.sock", "worker.sock", "server.json"}, left
    # What stays (README, "The embedded server"): the store, the lock, the log, the spool folder.
    assert left <= {"jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm", "server.lock", "server.log", "spool"}, left


def test_a_relative_unix_path_is_stored_absolute(home: Path, tmp_path: Path) -> None:
    result = hodei_server("start", "--listen", "unix:rel.sock", home=home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((home / "server.json").read_text())["address"] == f"unix:{tmp_path / 'rel.sock'}"
    assert hodei_server("stop", home=home).returncode == 0
    assert not (tmp_path / "rel.sock").exists()


def test_bad_options_are_one_line(home: Path, tmp_path: Path) -> None:
    result = hodei_server("run", "--listen", "127.0.0.1:99999", home=home)
    assert result.returncode == 2 and "127.0.0.1:99999" in one_line(result)
    missing = tmp_path / "missing-cert.pem"
    for command in ("run", "start"):
        result = hodei_server(command, "--tls-cert", str(missing), "--tls-key", str(tmp_path / "key.pem"), home=home)
        assert result.returncode == 1 and str(missing) in one_line(result)
        assert "[Errno" not in result.stderr
    version = hodei_server("--version", home=home)
    assert version.returncode == 0 and version.stdout.split() == ["hodei-server", metadata.version("hodei-stream")]


@pytest.fixture
def other_uid() -> int:
    """A uid that is not ours (nobody's), to own a folder prepared by someone else: root only."""
    if os.geteuid() != 0:
        pytest.skip("handing a folder to another user needs root")
    return 65534


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[dict[Path, bytes]]:
    """Files of 'another user' that planted symlinks must not let us touch: path → content."""
    folder = tmp_path / "victim"
    folder.mkdir()
    files = {folder / name: f"{name} of someone else\n".encode() for name in ("lock", "log", "json")}
    for path, content in files.items():
        path.write_bytes(content)
    yield files
    assert {path: path.read_bytes() for path in files} == files


def plant_symlinks(folder: Path, victim: dict[Path, bytes]) -> None:
    targets = sorted(victim)
    for name, target in zip(("server.json", "server.lock", "server.log"), targets, strict=False):
        (folder / name).symlink_to(target)


def refused(home: Path, *words: str) -> None:
    for command in ("start", "run", "stop"):
        result = hodei_server(command, home=home)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        line = one_line(result)
        assert str(home) in line and "HODEI_STREAM_HOME" in line and all(word in line for word in words), line


def test_a_world_writable_folder_of_another_user_is_refused(
    tmp_path: Path, other_uid: int, victim: dict[Path, bytes]
) -> None:
    home = tmp_path / "shared"
    home.mkdir()
    plant_symlinks(home, victim)
    home.chmod(0o777)
    os.chown(home, other_uid, other_uid)
    refused(home, "belongs to", f"uid {other_uid}")
    assert sorted(path.name for path in home.iterdir()) == ["server.json", "server.lock", "server.log"]


def test_a_symlink_to_another_users_folder_is_refused(
    tmp_path: Path, other_uid: int, victim: dict[Path, bytes]
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    plant_symlinks(theirs, victim)
    os.chown(theirs, other_uid, other_uid)
    home = tmp_path / "link"
    home.symlink_to(theirs)
    refused(home, "symlink", str(theirs))


def test_a_folder_another_user_could_swap_is_refused(tmp_path: Path, other_uid: int) -> None:
    """Ours and 0700, but in a folder of someone else's (or one anybody may write, without
    /tmp's sticky bit): they could rename it away and put a symlink in its place."""
    for owner, mode, words in (
        (other_uid, 0o755, ("belongs to", f"uid {other_uid}")),
        (0, 0o777, ("other users can write", "0777")),
    ):
        parent = tmp_path / f"parent-{owner}-{mode:o}"
        home = parent / "home"
        home.mkdir(parents=True, mode=0o700)
        parent.chmod(mode)
        os.chown(parent, owner, owner)
        refused(home, str(parent), *words)
    sticky = tmp_path / "sticky"
    (sticky / "home").mkdir(parents=True, mode=0o700)
    sticky.chmod(0o1777)
    assert hodei_server("status", home=sticky / "home").returncode == 1  # not running, not refused
    assert "not running" in hodei_server("status", home=sticky / "home").stdout


def test_a_folder_writable_by_others_is_refused_even_if_ours(tmp_path: Path, victim: dict[Path, bytes]) -> None:
    for mode in (0o770, 0o777, 0o702):
        home = tmp_path / f"mode-{mode:o}"
        home.mkdir()
        plant_symlinks(home, victim)
        home.chmod(mode)
        refused(home, "writable by other users", f"{mode:04o}")


def test_a_symlink_to_our_own_folder_is_used(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    home = tmp_path / "link"
    home.symlink_to(real)
    assert hodei_server("start", home=home).returncode == 0
    assert (real / "server.json").exists()
    assert hodei_server("stop", home=home).returncode == 0


def test_planted_symlinks_in_our_folder_are_not_followed(home: Path, victim: dict[Path, bytes]) -> None:
    """Belt and braces: even in a folder of ours, a symlink where a file goes is not written through."""
    (home / "server.log").symlink_to(sorted(victim)[1])
    result = hodei_server("start", home=home)
    assert result.returncode == 1 and "server.log" not in result.stdout
    assert "not usable" in one_line(result)


@pytest.fixture
def read_only_home(tmp_path: Path) -> Iterator[Path]:
    """A state folder of ours that cannot be written: a read-only tmpfs as root (root writes
    through modes), mode 0500 otherwise."""
    home = tmp_path / "ro"
    home.mkdir(mode=0o700)
    if os.geteuid() != 0:
        home.chmod(0o500)
        yield home
        home.chmod(0o700)
        return
    if not shutil.which("mount"):
        pytest.skip("a read-only folder as root needs mount (a read-only tmpfs)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m,mode=0700", "tmpfs", str(home)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    yield home
    subprocess.run(["umount", str(home)], check=True)


def test_a_read_only_folder_is_one_line(read_only_home: Path) -> None:
    for command in ("start", "run"):
        result = hodei_server(command, home=read_only_home)
        assert result.returncode == 1
        line = one_line(result)
        assert str(read_only_home) in line and "not usable" in line, line
