"""``cicd_simple.sh``: build, test or deploy the sample project in one job, streamed in the foreground.

--build checks out, byte-compiles and packages the project (an artifact and its sha256);
--test checks out and runs its test suite; --deploy copies the last package into the
artifact folder and verifies it; --all does all of it in one job.  The workspace,
``<state home>/work/cicd-simple``, stays between runs, so --deploy finds what --build made.
"""

from __future__ import annotations

from pathlib import Path

from plumbum import cli

from hodei_stream.jobs.cicd import artifacts_dir, cicd_job
from hodei_stream.jobs.wrapper import JobOutcome, JobRequest, JobScript, UsageError
from hodei_stream.state_folder import state_home

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


def workspace_dir() -> Path:
    return state_home() / "work" / "cicd-simple"


class CicdSimple(JobScript):
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
        return cicd_job(f"cicd-{self.mode}", workspace_dir(), MODES[self.mode], self.break_tests)

    def summary_rows(self, outcome: JobOutcome) -> list[tuple[str, str]]:
        rows = [("Workspace", str(workspace_dir()))]
        if self.packages_untested_code:
            rows.append(("Warning", "the package holds code with broken tests (--break-tests); do not deploy it"))
        if "deploy" in MODES[self.mode]:
            rows.append(("Artifacts", str(artifacts_dir())))
        return rows


def main() -> None:
    CicdSimple.run()


if __name__ == "__main__":
    main()
