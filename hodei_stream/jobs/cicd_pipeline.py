"""``cicd_pipeline.sh``: checkout → lint → test → build → package → deploy, one job per stage.

The stages share one workspace (``cicd-pipeline`` in the script's ``Workspace``: the state
folder with the embedded server, or ``--workspace``) and are streamed in turn; where the
workers share no folder they are the steps of one job.  The pipeline stops at the first
failure unless --keep-going, which runs the stages that do not need the failed one (never a
deploy after a failed test), and ends with a table of stages (see
``hodei_stream.jobs.pipeline``).
"""

from __future__ import annotations

from collections.abc import Collection

from plumbum import cli

from hodei_stream.jobs.cicd import cicd_job
from hodei_stream.jobs.pipeline import PipelineScript, Stage

# Each stage and the stages it needs: a deploy only of a package whose code passed lint and tests.
STAGES: dict[str, tuple[str, ...]] = {
    "checkout": (),
    "lint": ("checkout",),
    "test": ("checkout",),
    "build": ("checkout",),
    "package": ("build",),
    "deploy": ("package", "lint", "test"),
}


class CicdPipeline(PipelineScript):
    """Run a CI/CD pipeline on a Hodei server: each stage its own job, sharing one workspace.

    Where the server's workers share no folder (and no --workspace is named), the stages
    run as the steps of one job.

    checkout → lint → test → build → package → deploy of a small Python project shipped
    with hodei-stream; the package lands in the artifact folder with its sha256.
    """

    PROGNAME = "cicd_pipeline.sh"
    PIPELINE_NAME = "cicd"
    FOLDER = "cicd-pipeline"
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
                cicd_job(
                    f"cicd-{stage}", self.files, self.work_folder, [stage], self.break_tests and stage == "checkout"
                ),
                needs,
            )
            for stage, needs in STAGES.items()
        ]

    def pipeline_rows(self, completed: Collection[str]) -> list[tuple[str, str]]:
        deployed = [("Artifacts", self.files.where(self.files.artifacts))] if "deploy" in completed else []
        return [("Workspace", self.files.where(self.work_folder)), *deployed]


def main() -> None:
    CicdPipeline.run()


if __name__ == "__main__":
    main()
