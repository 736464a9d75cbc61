"""``cicd_pipeline.sh``: checkout → lint → test → build → package → deploy, one job per stage.

The stages share one workspace (``<state home>/work/cicd-pipeline``) and are streamed in
turn; the pipeline stops at the first failure unless --keep-going, which runs the stages that
do not need the failed one (never a deploy after a failed test), and ends with a table of
stages (see ``hodei_stream.jobs.pipeline``).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from plumbum import cli

from hodei_stream.jobs.cicd import artifacts_dir, cicd_job
from hodei_stream.jobs.pipeline import PipelineScript, Stage
from hodei_stream.state_folder import state_home

# Each stage and the stages it needs: a deploy only of a package whose code passed lint and tests.
STAGES: dict[str, tuple[str, ...]] = {
    "checkout": (),
    "lint": ("checkout",),
    "test": ("checkout",),
    "build": ("checkout",),
    "package": ("build",),
    "deploy": ("package", "lint", "test"),
}


def workspace_dir() -> Path:
    return state_home() / "work" / "cicd-pipeline"


class CicdPipeline(PipelineScript):
    """Run a CI/CD pipeline on a Hodei server: each stage its own job, sharing one workspace.

    checkout → lint → test → build → package → deploy of a small Python project shipped
    with hodei-stream; the package lands in the artifact folder with its sha256.
    """

    PROGNAME = "cicd_pipeline.sh"
    PIPELINE_NAME = "cicd"
    FOREGROUND_BY_DEFAULT = True

    fail_fast = cli.Flag("--fail-fast", help="stop at the first failed stage (default)")
    keep_going = cli.Flag(
        "--keep-going",
        excludes=["--fail-fast"],
        help="after a failed stage, run the stages that do not need it (deploy needs package, lint and test)",
    )
    break_tests = cli.Flag("--break-tests", help="plant a bug at checkout that makes the test stage fail")

    def stages(self) -> list[Stage]:
        return [
            Stage(
                stage,
                cicd_job(f"cicd-{stage}", workspace_dir(), [stage], self.break_tests and stage == "checkout"),
                needs,
            )
            for stage, needs in STAGES.items()
        ]

    def pipeline_rows(self, completed: Collection[str]) -> list[tuple[str, str]]:
        deployed = [("Artifacts", str(artifacts_dir()))] if "deploy" in completed else []
        return [("Workspace", str(workspace_dir())), *deployed]


def main() -> None:
    CicdPipeline.run()


if __name__ == "__main__":
    main()
