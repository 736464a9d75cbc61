"""The lines that make a CI system do something: pure functions, no I/O.

GitHub Actions reads workflow commands from a step's output: ``::name k=v,k=v::data`` at a
line's start, and the legacy ``##[name k=v;k=v]data`` anywhere in a line.  Data and property
values are escaped as the Actions toolkit escapes them (``%`` ``\\r`` ``\\n``, and in
properties also ``:`` ``,``), so that one value cannot end the command or add a property.
``::stop-commands::TOKEN`` makes the runner ignore every command until a line ``::TOKEN::``.

GitLab CI folds a job log into sections: ``ESC[0Ksection_start:EPOCH:NAME[collapsed=true]``
``CR ESC[0K`` then the header text, and ``ESC[0Ksection_end:EPOCH:NAME CR ESC[0K``; a name is
``[A-Za-z0-9_.-]+``, and a section is closed by the end marker of the same name.
"""

from __future__ import annotations

import re

GITHUB = "github"
GITLAB = "gitlab"
NO_CI = "none"
CI_CHOICES = ("auto", GITHUB, GITLAB, NO_CI)

ERASE_LINE = "\033[0K"  # what GitLab's markers start and end with: the terminal never shows them
_SECTION_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# What a section marker cannot do without: a carriage return, and an erase-in-line sequence
# (ESC [ ... K, or its one-character CSI).  Colours and other sequences are left alone.
_MARKER_PARTS = re.compile(r"\r|[\x1b](?=\[[0-9;]*K)|[\x9b](?=[0-9;]*K)")


def escape_data(text: str) -> str:
    """A workflow command's data, escaped as the toolkit's ``escapeData``."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value, escaped as the toolkit's ``escapeProperty``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(name: str, data: str = "", **properties: str) -> str:
    """``::name k=v,...::data`` (no newline), empty properties left out."""
    listed = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items() if value)
    return f"::{name}{' ' + listed if listed else ''}::{escape_data(data)}"


def group(title: str) -> str:
    return workflow_command("group", title)


def endgroup() -> str:
    return workflow_command("endgroup")


def error(title: str, message: str) -> str:
    return workflow_command("error", message, title=title)


def warning(title: str, message: str) -> str:
    return workflow_command("warning", message, title=title)


def stop_commands(token: str) -> str:
    return workflow_command("stop-commands", token)


def resume_commands(token: str) -> str:
    return f"::{token}::"


def inert_for_gitlab(text: str) -> str:
    """``text`` unable to open or close a GitLab section: its carriage returns and
    erase-in-line introducers shown as ``\\xHH``, as on a terminal."""
    if "\r" not in text and "\x1b" not in text and "\x9b" not in text:
        return text
    return _MARKER_PARTS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def section_name(*parts: str) -> str:
    """A GitLab section name from free text: runs of other characters become one ``-``."""
    return "-".join(_SECTION_NAME_UNSAFE.sub("-", part).strip("-") or "x" for part in parts)


def section_start(name: str, epoch_s: int, header: str, collapsed: bool) -> str:
    """The marker that opens section ``name`` (a ``section_name``) with its header line."""
    option = "[collapsed=true]" if collapsed else ""
    return f"{ERASE_LINE}section_start:{epoch_s}:{name}{option}\r{ERASE_LINE}{header}"


def section_end(name: str, epoch_s: int) -> str:
    return f"{ERASE_LINE}section_end:{epoch_s}:{name}\r{ERASE_LINE}"
