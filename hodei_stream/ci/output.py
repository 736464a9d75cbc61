"""Which CI runs us, and what our output must look like there: one ``CiOutput`` per run.

``CiOutput`` says, for the CI chosen (``--ci`` / ``HODEI_CI`` / detection), which lines open
and close a group, which raise an annotation, and how text that is not ours (a job's lines,
a server's error message) is kept from being read as a command:

- GitHub: between ``::stop-commands::TOKEN`` and ``::TOKEN::``, the token fresh and random
  per run (``secrets.token_hex``), so that no job can print the line that ends the block;
- GitLab: carriage returns and erase-in-line sequences shown as ``\\xHH`` (as on a
  terminal), so that no line of theirs holds what a section marker needs (colours pass);
- no CI: nothing changes.

GitLab decides whether a section starts folded at its ``section_start``, before the job
has run: sections here start folded, and whatever says a job failed is written after its
``section_end``, where it is seen without unfolding anything.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from hodei_stream.ci import commands
from hodei_stream.ci.commands import CI_CHOICES, GITHUB, GITLAB, NO_CI
from hodei_stream.stream.format import UNKNOWN_EXIT_CODE, visible

ENV_CI = "HODEI_CI"  # auto, github, gitlab or none: the default of --ci
LAST_LINES = 20  # of a failed job's log, in its testcase's <failure>


class CiChoiceError(ValueError):
    """HODEI_CI names no CI we know (a usage error)."""


def detected_ci(variables: Mapping[str, str]) -> str:
    """The CI these variables say we run in, by each CI's documented variable."""
    if variables.get("GITHUB_ACTIONS") == "true":
        return GITHUB
    if variables.get("GITLAB_CI") == "true":
        return GITLAB
    return NO_CI


def chosen_ci(option: str | None, variables: Mapping[str, str]) -> str:
    """``--ci`` (``option``), else ``HODEI_CI``, else ``auto``; ``auto`` detected: github,
    gitlab or none.  Raises ``CiChoiceError`` for an unknown ``HODEI_CI``."""
    choice = option or variables.get(ENV_CI) or "auto"
    if choice not in CI_CHOICES:
        raise CiChoiceError(f"{ENV_CI}={choice!r}: expected one of {', '.join(CI_CHOICES)}")
    return detected_ci(variables) if choice == "auto" else choice


def failure_text(status: str, error_message: str, exit_code: str, job_id: str) -> str:
    """What an annotation or a testcase says of a job that did not complete: its final
    status, error message, exit code and id."""
    said = f"{error_message}; " if error_message else ""
    code = f"exit code {exit_code}" if exit_code else UNKNOWN_EXIT_CODE
    return f"{status}: {said}{code}, job id {job_id}"


class CiOutput:
    """The lines our output needs in one CI (``kind``: github, gitlab or none)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.token = ""
        self.run_id = ""
        if kind != NO_CI:
            import secrets  # here: outside CI stream-logs never pays for it (start-up time)

            self.token = secrets.token_hex(16)  # 128 bits: no job guesses the line that ends a block
            self.run_id = secrets.token_hex(4)  # section names unique in a log that holds several runs
        self.sections: list[str] = []  # the GitLab sections open, innermost last
        self.opened = 0

    @property
    def active(self) -> bool:
        return self.kind != NO_CI

    @property
    def guards(self) -> bool:
        """Whether text that is not ours must be inside a stop-commands block (GitHub)."""
        return self.kind == GITHUB

    @property
    def escapes(self) -> bool:
        """Whether text that is not ours must have what makes a section marker escaped (GitLab)."""
        return self.kind == GITLAB

    def open_group(self, title: str) -> list[str]:
        """The lines that open a collapsible group titled ``title`` (one title line)."""
        if self.kind == GITHUB:
            return [commands.group(title)]
        if self.kind == GITLAB:
            self.opened += 1
            name = commands.section_name("hodei", self.run_id, str(self.opened), title[:40])
            self.sections.append(name)
            return [commands.section_start(name, int(time.time()), visible(title), collapsed=True)]
        return []

    def close_group(self) -> list[str]:
        """The lines that close the group opened last."""
        if self.kind == GITHUB:
            return [commands.endgroup()]
        if self.kind == GITLAB and self.sections:
            return [commands.section_end(self.sections.pop(), int(time.time()))]
        return []

    def failure(self, title: str, message: str) -> list[str]:
        """An error annotation (GitHub); GitLab has none: the caller's failure line, after
        the section, is what is seen."""
        return [commands.error(title, message)] if self.kind == GITHUB else []

    def notice_of_skip(self, title: str, message: str) -> list[str]:
        """A warning annotation (GitHub)."""
        return [commands.warning(title, message)] if self.kind == GITHUB else []

    def guard_on(self) -> str:
        return commands.stop_commands(self.token)

    def guard_off(self) -> str:
        return commands.resume_commands(self.token)

    def guarded(self, text: str) -> str:
        """Text of ours that may hold someone else's words, made inert in this CI, as one write."""
        if self.kind == GITHUB:
            return f"{self.guard_on()}\n{text}\n{self.guard_off()}"
        if self.kind == GITLAB:
            return commands.inert_for_gitlab(text)
        return text
