"""Who may talk to the embedded server (a token, TLS, where it may listen), and whose state
folder it may use.

The server runs commands for its user, so by default only that user can reach it (a Unix
socket, mode 0600, in a 0700 folder).  Any local user can connect to TCP on loopback, so
there the server requires a token: ``HODEI_TOKEN`` if given, else one of its own kept in the
state folder's token file (``folder_token``, mode 0600), which the same user's clients read
(``state_folder.client_token``); ``--no-token`` opts out.  Any other address needs both a
token given (clients send ``authorization: Bearer <token>`` as gRPC metadata) and TLS, so
that the token never crosses a network in clear.  The token is compared in constant time
and never logged, nor passed on to jobs or supervisors.

The state folder holds the server's socket, store, lock and log: a server must never write
where another user can plant files (a symlink to one of their own files in a 0777 folder
would make us truncate or append to it).  ``open_state_folder`` checks the folder before
anything is opened in it (it is ours, a real folder or a symlink to one of ours, and neither
group- nor world-writable) and ``open_in_folder`` opens files in it without following
symlinks.
"""

from __future__ import annotations

import errno
import hmac
import os
import pwd
import secrets
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path

import grpclib.server
from grpclib import GRPCError, Status
from grpclib.events import RecvRequest, listen

from hodei_stream.state_folder import TOKEN_FILE_NAME

AUTHORIZATION_KEY = "authorization"
# The token file's random part: 32 bytes (256 bits) from ``secrets``, URL-safe base64.
TOKEN_BYTES = 32


class UnsafeStateFolder(Exception):
    """The state folder is not one the server may use; the message is one line for the user."""


class TLSFilesError(ValueError):
    """The TLS certificate or key cannot be loaded; the message names the file."""


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
        if self.tls_cert is None or self.tls_key is None:  # (both or neither: checked at the edge)
            return None
        for role, path in (("certificate", self.tls_cert), ("key", self.tls_key)):
            try:
                with open(path, "rb"):
                    pass
            except OSError as error:
                raise TLSFilesError(f"cannot read the TLS {role} {path}: {error.strerror or error}") from None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (ssl.SSLError, OSError) as error:
            reason = getattr(error, "reason", None) or error.strerror or str(error)
            raise TLSFilesError(
                f"cannot use the TLS certificate {self.tls_cert} with the key {self.tls_key}: {reason}"
            ) from None
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


def owner_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def open_state_folder(home: Path, create: bool) -> int | None:
    """Check the state folder and open it: a descriptor for ``open_in_folder``, or None when
    it does not exist and ``create`` is false.  Raises ``UnsafeStateFolder`` when the folder is
    someone else's, a symlink to someone else's, writable by others, or cannot be made.

    The checks are made on the opened folder (``fstat``), so it cannot be swapped between the
    check and the use."""
    advice = "set HODEI_STREAM_HOME to a folder of your own"
    if create:
        try:
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise UnsafeStateFolder(
                f"cannot create the state folder {home}: {error.strerror or error}; {advice}"
            ) from None
    try:
        link = os.lstat(home)
        real = home.resolve(strict=True) if stat.S_ISLNK(link.st_mode) else home
        folder = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        if create:
            raise UnsafeStateFolder(f"the state folder {home} is a symlink to nowhere; {advice}") from None
        return None
    except OSError as error:
        what = (
            "is not a folder"
            if error.errno in (errno.ENOTDIR, errno.ELOOP)
            else f"cannot be opened: {error.strerror or error}"
        )
        raise UnsafeStateFolder(f"the state folder {home} {what}; {advice}") from None
    status = os.fstat(folder)
    shown = f"{home} (a symlink to {real})" if real != home else str(home)
    problem = None
    if status.st_uid != os.geteuid():
        problem = f"belongs to {owner_name(status.st_uid)}, not to you"
    elif status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = (
            f"is writable by other users (mode {stat.S_IMODE(status.st_mode):04o}; chmod 700 makes it yours alone)"
        )
    problem = problem or unsafe_ancestor(Path(os.path.realpath(real)))
    if problem:
        os.close(folder)
        raise UnsafeStateFolder(f"refusing the state folder {shown}: it {problem}; {advice}")
    return folder


def unsafe_ancestor(real: Path) -> str | None:
    """Why a folder above the state folder would let another user swap it (rename it away and
    put a symlink in its place), None when none would: each must be ours or root's, and
    writable by others only with the sticky bit (as /tmp is)."""
    for ancestor in real.parents:
        status = os.stat(ancestor)
        if status.st_uid not in (os.geteuid(), 0):
            return f"lies in {ancestor}, which belongs to {owner_name(status.st_uid)}"
        if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not status.st_mode & stat.S_ISVTX:
            return f"lies in {ancestor}, which other users can write (mode {stat.S_IMODE(status.st_mode):04o})"
    return None


def open_in_folder(folder: int, name: str, flags: int, mode: int = 0o600) -> int:
    """Open ``name`` inside the checked ``folder`` without following a symlink there."""
    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=folder)


def folder_token(folder: int, home: Path) -> str:
    """The token kept in the state folder's token file, made (mode 0600) when there is none.

    Kept across restarts, so a client that read it goes on working after the server is back;
    deleting the file makes the next server choose a new one.  Written whole under another
    name and renamed, so a client never reads half of it.  Raises ``UnsafeStateFolder`` when
    the file is not a regular file of ours readable by us alone (``chmod 600`` or delete it)."""
    shown = home / TOKEN_FILE_NAME
    try:
        descriptor = open_in_folder(folder, TOKEN_FILE_NAME, os.O_RDONLY | os.O_NONBLOCK)  # (a FIFO: no wait)
    except FileNotFoundError:
        return new_folder_token(folder, shown)
    except OSError as error:
        raise UnsafeStateFolder(f"cannot open the token file {shown}: {error.strerror or error}") from None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        regular = stat.S_ISREG(status.st_mode)
        token = file.read().decode(errors="replace").strip() if regular else ""
    problem = None
    if not regular or status.st_uid != os.geteuid():
        problem = "is not a file of yours"
    elif status.st_mode & 0o077:
        problem = f"can be read by other users (mode {stat.S_IMODE(status.st_mode):04o})"
    elif not token:
        problem = "is empty"
    if problem:
        raise UnsafeStateFolder(
            f"refusing the token file {shown}: it {problem}; delete it and the server makes a new one"
        )
    return token


def new_folder_token(folder: int, shown: Path) -> str:
    """A new random token, written whole to the token file (mode 0600) in the state folder."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    partial = f".{TOKEN_FILE_NAME}.new"
    try:
        descriptor = open_in_folder(folder, partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(descriptor, "w") as file:
            file.write(token + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.rename(partial, TOKEN_FILE_NAME, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError as error:
        raise UnsafeStateFolder(f"cannot write the token file {shown}: {error.strerror or error}") from None
    return token
