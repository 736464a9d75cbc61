"""What ``cicd_simple.sh`` and ``cicd_pipeline.sh`` share: the sample project and its jobs.

Both run the CI/CD payload (``payloads/cicd.py``) on the sample project ``samples/cicd``
(shipped in the job's bundle): the simple script runs a few stages in one job, the pipeline
one job per stage (or, where the workers share no folder, one job for all).  Their
workspaces and the artifact folder are in the script's ``Workspace``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from hodei_stream.jobs.payload import payload_file
from hodei_stream.jobs.workspace import Workspace
from hodei_stream.jobs.wrapper import JobRequest

SAMPLE_PROJECT = Path(__file__).with_name("samples") / "cicd"


def cicd_job(
    name: str, files: Workspace, workspace: PurePosixPath, stages: Sequence[str], break_tests: bool = False
) -> JobRequest:
    """A job running ``stages`` of the CI/CD payload in ``workspace``; checkout gets the project."""
    args = ["--workspace", str(workspace), "--artifacts", str(files.artifacts)]
    if break_tests:
        args.append("--break-tests")
    return JobRequest(
        name=name,
        payload=payload_file("cicd.py"),
        args=[*args, *stages],
        description=f"CI/CD: {', '.join(stages)} of the sample project in {workspace}",
        tags=["cicd", *stages],
        bundle=[SAMPLE_PROJECT] if "checkout" in stages else [],
    )
