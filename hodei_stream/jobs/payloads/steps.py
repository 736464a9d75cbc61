"""Steps job payload: several stages run in turn in ONE job, in one working folder.

Where the workers share no folder, a flow of stages that hand files on (a pipeline, the
analytics after the ETL) cannot be one job per stage: each job would run on a worker of its
own.  So the stages become the steps of one job, as the steps of a CI job share its
workspace.  Shipped to a worker as the body of a job (see ``hodei_stream.jobs.payload``):
Python's standard library only, with the stages' own payloads in the job's bundle
(``$HODEI_BUNDLE_DIR``).

    python3 -u steps.py PLAN

PLAN is JSON: ``{"keep_going": false, "steps": [{"name": "lint", "payload": "cicd.py",
"args": [...], "needs": ["checkout"]}, ...]}``.  Each step runs ``python3 -u PAYLOAD ARGS`` in
this job's working folder; its stdout goes straight to the job's, its stderr passes through
this process line by line (so that the step's last "❌ ..." line, its reason, is known).

Around each step a marker line, readable as it is and parsed by the job scripts to build
their stage table (``MARKERS``)::

    ▶ stage 2/6: lint
    ■ stage 2/6: lint COMPLETED in 0.32s
    ■ stage 3/6: test FAILED in 0.44s (exit 1): test failed: the test suite failed
    ⏭ stage 4/6: build skipped: the pipeline stopped at test

The first failure stops the flow; with ``keep_going`` the steps that do not need a failed
one still run (``reason_to_skip``).  Exit status 0 when every step completed, 1 otherwise,
2 on a bad plan.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

BUNDLE_DIR_ENV = "HODEI_BUNDLE_DIR"  # where hodei_stream.jobs.payload unpacks the job's bundle
FAILURE_MARK = "❌ "  # how the stages' payloads begin the line that says why they failed
STARTED = re.compile(r"^▶ stage (\d+)/(\d+): (\S+)$")
ENDED = re.compile(r"^■ stage (\d+)/(\d+): (\S+) (COMPLETED|FAILED) in (\d+\.\d+)s(?: \(exit (-?\d+)\))?(?:: (.*))?$")
SKIPPED = re.compile(r"^⏭ stage (\d+)/(\d+): (\S+) skipped: (.*)$")


def reason_to_skip(needs: Sequence[str], statuses: Mapping[str, str], failed: str | None, keep_going: bool) -> str:
    """Why a stage must not run, or "": after a failure (the stage ``failed``), everything
    unless ``keep_going``; with it, what needs a stage that did not complete (a deploy never
    follows a failed test).  ``statuses``: the final status of each stage run or skipped so far."""
    if failed is not None and not keep_going:
        return f"the pipeline stopped at {failed}"
    blocked = [f"{need}, which {statuses[need]}" for need in needs if statuses.get(need) != "COMPLETED"]
    return f"it needs {' and '.join(blocked)}" if blocked else ""


def started_line(number: int, total: int, name: str) -> str:
    return f"▶ stage {number}/{total}: {name}"


def skipped_line(number: int, total: int, name: str, why: str) -> str:
    return f"⏭ stage {number}/{total}: {name} skipped: {why}"


def ended_line(number: int, total: int, name: str, exit_status: int, seconds: float, reason: str) -> str:
    line = f"■ stage {number}/{total}: {name} {'COMPLETED' if exit_status == 0 else 'FAILED'} in {seconds:.2f}s"
    if exit_status != 0:
        line += f" (exit {exit_status})" + (f": {reason}" if reason else "")
    return line


def run_step(payload: Path, args: Sequence[str]) -> tuple[int, str]:
    """Run one step; its exit status and its last "❌ ..." line (without the mark), if any."""
    process = subprocess.Popen(
        [sys.executable, "-u", str(payload), *args], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    reason = ""
    assert process.stderr is not None
    for raw in process.stderr:  # each line passed on at once, as the step wrote it
        sys.stderr.buffer.write(raw)
        sys.stderr.buffer.flush()
        text = raw.decode("utf-8", "replace").rstrip("\n")
        if text.startswith(FAILURE_MARK):
            reason = text.removeprefix(FAILURE_MARK)
    return process.wait(), reason


def say(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str]) -> int:
    try:
        (text,) = argv
        plan = json.loads(text)
        steps = [
            (str(step["name"]), str(step["payload"]), list(map(str, step["args"])), step["needs"])
            for step in plan["steps"]
        ]
        keep_going = bool(plan["keep_going"])
    except (ValueError, KeyError, TypeError) as error:
        print(f"❌ steps: a bad plan ({error}): expected one JSON argument", file=sys.stderr, flush=True)
        return 2
    bundle = Path(os.environ.get(BUNDLE_DIR_ENV, "."))
    statuses: dict[str, str] = {}
    failed: str | None = None
    for number, (name, payload, args, needs) in enumerate(steps, start=1):
        if why := reason_to_skip(needs, statuses, failed, keep_going):
            say(skipped_line(number, len(steps), name, why))
            statuses[name] = "SKIPPED"
            continue
        say(started_line(number, len(steps), name))
        started = time.monotonic()
        try:
            exit_status, reason = run_step(bundle / payload, args)
        except OSError as error:
            exit_status, reason = 127, f"{name} could not start: {error}"
        say(ended_line(number, len(steps), name, exit_status, time.monotonic() - started, reason))
        statuses[name] = "COMPLETED" if exit_status == 0 else "FAILED"
        if exit_status != 0:
            failed = failed or name
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
