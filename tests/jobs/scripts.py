"""Run the job scripts as a user does: the bash launcher as a subprocess, output timed as it arrives."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "job_scripts"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
OUT_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) \[OUT\] (.*)$")
JOB_TIMEOUT_S = 120.0


@dataclass
class Run:
    """The launcher as a subprocess, its stdout and stderr lines stamped on arrival."""

    process: subprocess.Popen[str]
    stdout: list[tuple[float, str]] = field(default_factory=list)
    stderr: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.readers = [
            threading.Thread(target=self.read, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=self.read, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def read(stream: IO[str], lines: list[tuple[float, str]]) -> None:
        for line in stream:
            lines.append((time.monotonic(), line.rstrip("\n")))  # noqa: PERF401 (each line as it arrives, for the test to see at once)

    def finish(self, timeout: float = JOB_TIMEOUT_S) -> int:
        status = self.process.wait(timeout)
        for reader in self.readers:
            reader.join(timeout)
        return status

    @property
    def out_text(self) -> list[str]:
        return [text for _, text in self.stdout]

    @property
    def err_text(self) -> str:
        return "\n".join(text for _, text in self.stderr)

    @property
    def all_text(self) -> str:
        return "\n".join(self.out_text) + "\n" + self.err_text


def launch(script: str, home: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """``script`` with ``args`` as a user types it, the state folder ``home``, and ``env`` added."""
    process = subprocess.Popen(
        [str(SCRIPTS / script), *args],
        env={**os.environ, "HODEI_STREAM_HOME": str(home), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a test can Ctrl+C it alone
    )
    return Run(process)


def summary_value(run: Run, label: str) -> str:
    match = re.search(rf"^ +{label}: +(.+)$", run.err_text, re.MULTILINE)
    assert match, f"no '{label}' in the summary:\n{run.err_text}"
    return match.group(1).strip()


def stage_rows(run: Run) -> dict[str, tuple[str, str]]:
    """The pipeline summary's table: stage → (job id or -, status)."""
    rows = re.findall(rf"^ +(\w+) +({UUID}|-) +\S+ (\w+) +", run.err_text, re.MULTILINE)
    return {stage: (job_id, status) for stage, job_id, status in rows}
