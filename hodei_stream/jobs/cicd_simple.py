"""``cicd_simple.sh``: build, test or deploy the sample project in one job, streamed in the foreground.

--build checks out, byte-compiles and packages the project (an artifact and its sha256);
--test checks out and runs its test suite; --deploy copies the last package into the
artifact folder and verifies it; --all does all of it in one job.  The workspace,
``cicd-simple`` in the script's ``Workspace`` (the state folder with the embedded server, or
``--workspace``), stays between runs, so --deploy finds what --build made.  Where the
workers share no folder, no later job could find it: --deploy then builds the package it
deploys, in its own job, and says so.
"""

from __future__ import annotations

from plumbum import cli

from hodei_stream.jobs.cicd import cicd_job
from hodei_stream.jobs.workspace import WorkspaceScript
from hodei_stream.jobs.wrapper import JobOutcome, JobRequest, UsageError

MODES = {
    "build": ["checkout", "build", "package"],
    "test": ["checkout", "test"],
    "deploy": ["deploy"],
    "all": ["checkout", "lint", "test", "build", "package", "deploy"],
}

UNTESTED_WARNING = (
    "⚠️ --build --break-tests packages code whose tests fail (--build runs no tests): "
    "do not deploy this package; --test --break-tests shows the failure"
)
DEPLOY_ALONE_NOTICE = (
    "▶ --deploy builds the package it deploys, in its own job: the server's workers share no folder "
    "(name one with --workspace DIR to deploy what --build made)"
)
# --deploy where no later job sees what an earlier one built: build it first, in the same job.
BUILD_AND_DEPLOY = ["checkout", "build", "package", "deploy"]
FOLDER = "cicd-simple"


class CicdSimple(WorkspaceScript):
    """Build, test or deploy a small Python project (shipped with hodei-stream) as a Hodei job.

    --build: byte-compile and package it (tar.gz with its sha256); --test: run its unittest
    suite; --deploy: copy the package into the artifact folder (NAME/VERSION/) and verify
    its checksum; --all: every step in one job.  --break-tests plants a bug the tests catch.
    """

    PROGNAME = "cicd_simple.sh"
    FOREGROUND_BY_DEFAULT = True

    build = cli.Flag("--build", help="check out, byte-compile and package (artifact + sha256)")
    test = cli.Flag("--test", excludes=["--build"], help="check out and run the test suite")
    deploy = cli.Flag("--deploy", excludes=["--build", "--test"], help="deploy the last package to the artifact folder")
    all = cli.Flag(
        "--all", excludes=["--build", "--test", "--deploy"], help="checkout, lint, test, build, package, deploy"
    )
    break_tests = cli.Flag("--break-tests", help="plant a bug at checkout that makes a test fail")

    @property
    def mode(self) -> str:
        return next((mode for mode in MODES if getattr(self, mode)), "")

    @property
    def stages(self) -> list[str]:
        """What the job runs: the mode's stages, and for --deploy alone on its worker its build too."""
        if self.mode == "deploy" and not self.files.shared:
            return BUILD_AND_DEPLOY
        return MODES[self.mode]

    def check_usage(self) -> None:
        if not self.mode:
            raise UsageError("choose a job: --build, --test, --deploy or --all")
        if self.break_tests and "checkout" not in MODES[self.mode]:
            raise UsageError("--break-tests needs a checkout: use it with --test, --build or --all")

    @property
    def packages_untested_code(self) -> bool:
        """--build --break-tests: the bug is planted, and no test runs to catch it before packaging."""
        stages = MODES[self.mode]
        return self.break_tests and "package" in stages and "test" not in stages

    def job_request(self) -> JobRequest:
        if self.packages_untested_code:
            self.say(UNTESTED_WARNING)
        if self.stages != MODES[self.mode]:
            self.say(DEPLOY_ALONE_NOTICE)
        return cicd_job(f"cicd-{self.mode}", self.files, self.files.folder(FOLDER), self.stages, self.break_tests)

    def summary_rows(self, outcome: JobOutcome) -> list[tuple[str, str]]:
        rows = [("Workspace", self.files.where(self.files.folder(FOLDER)))]
        if self.packages_untested_code:
            rows.append(("Warning", "the package holds code with broken tests (--break-tests); do not deploy it"))
        if "deploy" in MODES[self.mode]:
            rows.append(("Artifacts", self.files.where(self.files.artifacts)))
        return rows


def main() -> None:
    CicdSimple.run()


if __name__ == "__main__":
    main()
