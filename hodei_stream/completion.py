"""The shell completion scripts ``hodei completion bash|zsh|fish`` prints: argcomplete's for
``hodei`` and ``stream-logs`` (options, and job ids from the server), and the job scripts'
(plumbum's: their options) under the names people type them by.

A job script is typed as ``cicd_pipeline.sh`` on the ``PATH`` or as a path
(``./job_scripts/cicd_pipeline.sh``): bash looks up a completion by the whole word, then by
the part after its last slash, so one registered under the script's file name serves every
path to it; zsh (through bashcompinit) does the same.
"""

from __future__ import annotations

import importlib
import re

from plumbum import cli

SHELLS = ("bash", "zsh", "fish")
COMMANDS = ("hodei", "stream-logs")
# The modules behind job_scripts/*.sh, each holding one ``cli.Application`` whose PROGNAME is
# the script's file name.
JOB_SCRIPT_MODULES = (
    "cicd_pipeline",
    "cicd_simple",
    "data_processing_pipeline",
    "data_processing_simple",
    "maven_job_with_logs",
    "trace_job",
)


def job_scripts() -> list[type[cli.Application]]:
    """The job scripts' applications, in the order of ``JOB_SCRIPT_MODULES``."""
    found = []
    for name in JOB_SCRIPT_MODULES:
        module = importlib.import_module(f"hodei_stream.jobs.{name}")
        (application,) = (
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, cli.Application) and value.__module__ == module.__name__
        )
        found.append(application)
    return found


def _bash_job_script(application: type[cli.Application]) -> str:
    """plumbum's bash completion of one job script, its function named by an identifier and
    registered under the script's file name (falling back to file names)."""
    typed = str(application.PROGNAME)
    function = "_hodei_" + re.sub(r"\W", "_", typed)
    script = application.completion_script_bash(function.removeprefix("_"))
    script = script.replace(f"_{function.removeprefix('_')}_completion", function)
    # A switch's value: plumbum's script would run a command of the function's name, which
    # does not exist; no suggestion lets the shell offer file names instead.
    asks_itself = f'COMPREPLY=( $(compgen -W "$({function.removeprefix("_")} --complete $cur 2>/dev/null)" -- "$cur") )'
    script = script.replace(asks_itself, "COMPREPLY=()")
    body = script.rpartition("\ncomplete -F ")[0]
    return f"{body}\ncomplete -o default -F {function} {typed}\n"


def shell_script(shell: str) -> str:
    """The script for ``shell`` (one of ``SHELLS``) that completes every command of hodei-stream."""
    from argcomplete.shell_integration import shellcode

    parts = [shellcode(list(COMMANDS), shell=shell)]
    applications = job_scripts()
    if shell == "fish":
        parts += [application.completion_script_fish(str(application.PROGNAME)) + "\n" for application in applications]
    else:
        if shell == "zsh":  # the job scripts' bash functions, through zsh's own bash emulation
            parts.append("autoload -U +X bashcompinit && bashcompinit\n")
        parts += [_bash_job_script(application) for application in applications]
    return "\n".join(parts)
