"""Where a script's jobs keep their files, and whether separate jobs of one script see them.

A job's files live where its worker can reach them, never on the client's disk by accident:

- the embedded server's worker is this machine: the state folder (``work/…``, ``artifacts/``),
  shared by every job, and the summary names the files as they are here;
- a folder the user names, ``--workspace DIR`` (or ``$HODEI_WORKSPACE``), that every worker
  mounts at the same place (an NFS share, a Kubernetes volume): shared by every job;
- otherwise the job's own working folder on its worker (relative paths): nothing is shared
  between jobs, so a flow of several jobs runs as one job whose stages are its steps.

``WorkspaceScript`` is the base of every script whose jobs keep files: it adds the
``--workspace`` switch and picks the ``Workspace`` once the server is known.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

from plumbum import cli

from hodei_stream.endpoint import Server
from hodei_stream.jobs.usage import OptionValueError
from hodei_stream.jobs.wrapper import JobScript
from hodei_stream.state_folder import state_home

WORKSPACE_ENV = "HODEI_WORKSPACE"
JOB_FOLDER_NOTE = "in the job's working folder on its worker"


class Kind(enum.Enum):
    LOCAL = enum.auto()  # the state folder: the embedded server's worker is this machine
    NAMED = enum.auto()  # --workspace DIR, mounted by every worker
    JOB = enum.auto()  # the job's own working folder on its worker


@dataclass(frozen=True)
class Workspace:
    """The folders a script's jobs use: ``folder(name)`` for work, ``artifacts`` for deployments."""

    kind: Kind
    root: PurePosixPath  # work folders are under it; "." (relative) for the job's own folder
    artifacts: PurePosixPath

    @classmethod
    def for_server(cls, server: Server, named: str | None) -> Workspace:
        if named:
            root = PurePosixPath(named)
            return cls(Kind.NAMED, root, root / "artifacts")
        if server.embedded:
            home = PurePosixPath(state_home())
            return cls(Kind.LOCAL, home / "work", home / "artifacts")
        return cls(Kind.JOB, PurePosixPath("."), PurePosixPath("artifacts"))

    @property
    def shared(self) -> bool:
        """True when separate jobs see each other's files (LOCAL, NAMED)."""
        return self.kind is not Kind.JOB

    def folder(self, name: str) -> PurePosixPath:
        return self.root / name

    def where(self, path: PurePosixPath) -> str:
        """``path`` for a summary, saying truthfully where it is."""
        if self.kind is Kind.LOCAL:
            return str(path)
        if self.kind is Kind.NAMED:
            return f"{path} (in the named workspace)"
        return f"{path} ({JOB_FOLDER_NOTE})"

    def reaches(self, path: PurePosixPath) -> bool:
        """Whether the jobs' workers read this machine's absolute ``path`` where it is: the
        embedded server's, and any worker for a path in the named workspace."""
        return self.kind is Kind.LOCAL or (self.kind is Kind.NAMED and path.is_relative_to(self.root))

    def local(self, path: PurePosixPath) -> Path | None:
        """``path`` on this machine, when this machine has it (the embedded server's worker,
        or a named workspace this machine mounts too); else None."""
        if self.kind is Kind.JOB:
            return None
        local = Path(path)
        return local if local.exists() else None


def absolute_folder(text: str) -> str:
    """--workspace's argument: an absolute path, the same on every worker that mounts it."""
    if not PurePosixPath(text).is_absolute():
        raise OptionValueError(
            f"--workspace takes an absolute path (a folder every worker mounts at the same place), not {text!r}"
        )
    return str(PurePosixPath(text))


class WorkspaceScript(JobScript):
    """A script whose jobs keep files: ``self.files`` says where (see the module docstring)."""

    workspace_dir = cli.SwitchAttr(
        "--workspace",
        absolute_folder,
        argname="DIR",
        envname=WORKSPACE_ENV,
        help=f"a folder every worker mounts at the same place, shared by the jobs (default: ${WORKSPACE_ENV}; "
        "else the state folder with the embedded server, else each job's own working folder)",
    )

    @cached_property
    def files(self) -> Workspace:
        return Workspace.for_server(self.server, self.workspace_dir)
