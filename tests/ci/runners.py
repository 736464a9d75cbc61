"""The CI runners' reading of a log, rebuilt from their documented rules, for the tests.

GitHub Actions (the runner's ``ActionCommand.TryParseV2`` / ``TryParse`` and
``ActionCommandManager.TryProcessCommand``):

- the output is cut into lines at ``\\n``, ``\\r\\n`` and a lone ``\\r`` (.NET ``ReadLine``);
- ``::name k=v,k=v::data`` is a command when, after leading whitespace, the line starts
  with ``::`` and ``name`` is a registered command (any case);
- else ``##[name k=v;k=v]data`` is one wherever ``##[`` is in the line, the first ``]``
  after it ending the name and properties;
- ``stop-commands`` with data TOKEN: every later command is ignored, until one named
  TOKEN (``::TOKEN::`` or ``##[TOKEN]``) resumes them.

GitLab (its job log's section markers): ``ESC[0Ksection_start:EPOCH:NAME[options]`` or
``ESC[0Ksection_end:EPOCH:NAME``, the marker read up to the next carriage return (or the
line's end), and a marker whose ``:``-separated parts are not exactly three is no marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REGISTERED = frozenset(
    {
        "add-mask",
        "add-matcher",
        "add-path",
        "debug",
        "echo",
        "endgroup",
        "error",
        "group",
        "internal-set-repo-path",
        "notice",
        "remove-matcher",
        "save-state",
        "set-env",
        "set-output",
        "stop-commands",
        "warning",
    }
)
RUNNER_LINES = re.compile(r"\r\n|\r|\n")


def unescape(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


@dataclass(frozen=True)
class Command:
    name: str
    properties: tuple[tuple[str, str], ...]
    data: str


def command_v2(line: str, registered: set[str]) -> Command | None:
    message = line.lstrip()
    if not message.startswith("::"):
        return None
    end = message.find("::", 2)
    if end < 0:
        return None
    info = message[2:end]
    name, _, listed = info.partition(" ")
    if name.lower() not in registered:
        return None
    properties = tuple(
        (key, unescape(value)) for key, _, value in (pair.partition("=") for pair in listed.split(",") if pair)
    )
    return Command(name.lower(), properties, unescape(message[end + 2 :]))


def command_v1(line: str, registered: set[str]) -> Command | None:
    start = line.find("##[")
    if start < 0:
        return None
    close = line.find("]", start)
    if close < 0:
        return None
    name, _, listed = line[start + 3 : close].partition(" ")
    if name.lower() not in registered:
        return None
    properties = tuple(
        (key, value) for key, _, value in (pair.partition("=") for pair in listed.split(";") if pair.strip())
    )
    return Command(name.lower(), properties, line[close + 1 :])


@dataclass
class GithubLog:
    """What the runner did with a log: the commands it obeyed, in order, and what it showed."""

    commands: list[Command] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # commands seen inside stop-commands
    stopped_at_end: bool = False

    def names(self) -> list[str]:
        return [command.name for command in self.commands]


def read_as_github(text: str) -> GithubLog:
    """``text`` (a step's output) as the GitHub runner processes it."""
    log = GithubLog()
    registered = set(REGISTERED)
    token: str | None = None
    for line in RUNNER_LINES.split(text):
        command = command_v2(line, registered) or command_v1(line, registered)
        if command is None:
            log.shown.append(line)
            continue
        if token is not None:
            if command.name == token.lower():
                registered.discard(token.lower())
                token = None
            else:
                log.ignored.append(line)
            continue
        if command.name == "stop-commands":
            token = command.data
            registered.add(token.lower())
            continue
        log.commands.append(command)
    log.stopped_at_end = token is not None
    return log


def groups_balanced(log: GithubLog) -> bool:
    """Every ``group`` closed by an ``endgroup`` before the next opens (groups do not nest)."""
    depth = 0
    for name in log.names():
        if name == "group":
            if depth:
                return False
            depth = 1
        elif name == "endgroup":
            if not depth:
                return False
            depth = 0
    return depth == 0


SECTION = re.compile("\x1b\\[0Ksection_(start|end):")


@dataclass(frozen=True)
class Section:
    name: str
    start_s: int
    end_s: int
    options: str


def read_as_gitlab(text: str) -> list[Section]:
    """The sections GitLab folds ``text`` into; raises AssertionError for markers that do not pair."""
    opened: list[tuple[str, int, str]] = []
    sections: list[Section] = []
    seen: set[str] = set()
    for line in text.split("\n"):
        for match in SECTION.finditer(line):
            rest = line[match.start() + len("\x1b[0Ksection_") :]
            marker = rest.split("\r", 1)[0]
            parts = marker.split(":")
            if len(parts) != 3:
                continue
            kind, epoch, name_and_options = parts
            name, _, options = name_and_options.partition("[")
            if kind == "start":
                assert name not in seen, f"section {name} opened twice"
                seen.add(name)
                opened.append((name, int(epoch), options.rstrip("]")))
            else:
                assert opened and opened[-1][0] == name, f"section_end {name} closes no open section ({opened})"
                started_name, started, started_options = opened.pop()
                sections.append(Section(started_name, started, int(epoch), started_options))
    assert not opened, f"sections never closed: {opened}"
    return sections
