"""Shell completion end to end: ``hodei completion SHELL`` sourced into a real interactive
bash, zsh and fish on a pseudo-terminal, Tab pressed, and what the shell puts on the line or
lists read back; job ids from a real embedded server, and silence when none answers."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hodei_stream.endpoint import Server

from .streaming import HODEI, submit

BIN = str(Path(sys.executable).parent)  # hodei, stream-logs: the commands completed
CHECKOUT = Path(__file__).resolve().parents[2]
# Escape sequences a line editor draws with (CSI, OSC, charset and keypad modes).
ESCAPES = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][A-Z0-9]|[=>])")
SETTLE_S = 1.0  # a shell's start-up and each set-up line: read what it prints meanwhile
SHELLS = {
    "bash": (["bash", "--norc", "--noprofile", "-i"], ['eval "$(hodei completion bash)"']),
    "zsh": (["zsh", "-f", "-i"], ["autoload -U compinit && compinit -u", 'eval "$(hodei completion zsh)"']),
    "fish": (["fish", "--no-config", "-i"], ["hodei completion fish | source"]),
}


def shell_environment(server_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "TERM": "xterm",
        "HODEI_GRPC_URL": server_url,
    }


def press_tab(shell: str, typed: str, expected: str, env: dict[str, str], timeout: float = 15.0) -> str:
    """Start ``shell`` interactively on a pty, source the completion, type ``typed`` (with its
    Tabs); what it shows from then on, without escape sequences, once ``expected`` is in it
    (or at the deadline)."""
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed here (.ci/run installs it)")
    argv, setup = SHELLS[shell]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the shell, in the checkout (./job_scripts/... resolves)
        os.chdir(CHECKOUT)
        os.execvpe(argv[0], argv, env)
    shown = b""

    def read_for(seconds: float) -> None:
        nonlocal shown
        give_up = time.monotonic() + seconds
        while time.monotonic() < give_up:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    shown += os.read(fd, 65536)
                except OSError:  # EIO: the shell is gone
                    return

    try:
        read_for(SETTLE_S)
        for line in setup:
            os.write(fd, line.encode() + b"\r")
            read_for(SETTLE_S)
        start = len(shown)
        os.write(fd, typed.encode())
        give_up = time.monotonic() + timeout
        text = ""
        while time.monotonic() < give_up and expected not in text:
            read_for(0.1)
            text = ESCAPES.sub("", shown[start:].decode(errors="replace"))
        return text
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


@pytest.mark.parametrize("shell", SHELLS)
def test_options_and_job_script_options_complete(shell: str, server: Server) -> None:
    env = shell_environment(server.target)
    assert "--no-follow " in press_tab(shell, "stream-logs --no-fo\t", "--no-follow ", env)
    assert "--until-done " in press_tab(shell, "stream-logs --until-d\t", "--until-done ", env)
    assert "completion " in press_tab(shell, "hodei comp\t", "completion ", env)
    # A job script typed as a path and by its name on the PATH: the same completion.
    assert "--fail-fast " in press_tab(shell, "./job_scripts/cicd_pipeline.sh --fail-f\t", "--fail-fast ", env)
    assert "--no-logs " in press_tab(shell, "job_scripts/trace-job.sh --no-l\t", "--no-logs ", env)


@pytest.mark.parametrize("shell", SHELLS)
def test_job_ids_complete_from_the_server_with_their_names(shell: str, server: Server) -> None:
    env = shell_environment(server.target)
    first = submit(server, "echo one", name="nightly-backup")
    second = submit(server, "echo two", name="weekly-report")
    # A prefix only one of them has: the shell puts the whole id on the line.
    unique = next(length for length in range(1, 37) if first[:length] != second[:length])
    assert f"{first} " in press_tab(shell, f"stream-logs {first[:unique]}\t", f"{first} ", env)
    assert f"{second} " in press_tab(shell, f"hodei status {second[:unique]}\t", f"{second} ", env)
    # Nothing typed yet: every id listed, with its name where the shell shows descriptions.
    listing = press_tab(shell, "hodei cancel \t\t", "weekly-report" if shell != "bash" else second, env)
    assert first in listing and second in listing
    if shell != "bash":  # bash lists the words alone
        assert "nightly-backup" in listing and "weekly-report" in listing


def completions_in_bash(line: str, env: dict[str, str]) -> tuple[list[str], str, float]:
    """Call the completion function as bash does on Tab (COMP_* set), in a bash process: the
    words offered, what it wrote on stderr, and how long it took."""
    script = (
        'eval "$(hodei completion bash)"\n'
        f'COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}; read -ra COMP_WORDS <<< "$COMP_LINE"\n'
        'COMP_WORDS+=(""); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n'
        "started=$EPOCHREALTIME; _python_argcomplete stream-logs; ended=$EPOCHREALTIME\n"
        'printf "%s\\n" "${COMPREPLY[@]}"; echo "took $started $ended"\n'
    )
    result = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    *words, took = result.stdout.splitlines()
    started, ended = (float(value) for value in took.split()[1:])
    return [word for word in words if word], result.stderr, ended - started


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port on loopback that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_no_server_no_ids_nothing_said(silent_server: str) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"127.0.0.1:{closed.getsockname()[1]}"  # bound, not listening: refused
    for url, within_s in ((refused, 5.0), (silent_server, 1.0 + 5.0)):
        words, stderr, took = completions_in_bash("stream-logs ", shell_environment(url))
        assert stderr == "", url
        assert words and all(word.startswith("-") for word in words), (url, words)  # options, no id
        assert took < within_s, (url, took)  # the deadline of 1 s, plus the command's start
    closed.close()


def test_completion_script_is_printed_for_each_shell_and_refused_for_others(home: Path) -> None:
    markers = {"bash": "complete -o nospace", "zsh": "compdef _python_argcomplete", "fish": "complete -c"}
    for shell, marker in markers.items():
        result = subprocess.run([*HODEI, "completion", shell], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert marker in result.stdout and "cicd_pipeline.sh" in result.stdout
    wrong = subprocess.run([*HODEI, "completion", "tcsh"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2
    assert len(wrong.stderr.splitlines()) == 1 and "invalid choice: 'tcsh'" in wrong.stderr
