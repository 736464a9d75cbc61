"""``maven_job_with_logs.sh``: a real ``mvn -B`` build as a job, its log streamed in the background.

The job (``payloads/maven.sh``) carries the sample projects (``samples/maven``, shipped as a
compressed bundle) or fetches ``--repo``; it builds in ``<state home>/work/maven/<project>``
with a local Maven repository of its own.  While the log streams in the background this
process polls the job's status (``[WAIT]`` while it waits for a worker).  When Maven could not
resolve its plugins or dependencies, one line at the end says so and how to fix it.
"""

from __future__ import annotations

import re
from pathlib import Path

from plumbum import cli

from hodei_stream.client import HodeiClient
from hodei_stream.jobs.payload import payload_file
from hodei_stream.jobs.wrapper import JobOutcome, JobRequest, JobScript, job_log_lines
from hodei_stream.state_folder import state_home

SAMPLES_DIR = Path(__file__).with_name("samples") / "maven"
# The complex sample's app, runnable from the build tree (its manifest points at the core jar).
COMPLEX_APP_JAR = "stock-app/target/stock-app-1.0.0.jar"
DEBIAN_PACKAGES = (
    "maven libmaven-clean-plugin-java libmaven-resources-plugin-java libmaven-compiler-plugin-java "
    "libsurefire-java libmaven-jar-plugin-java libmaven-install-plugin-java junit4"
)
# Maven's own words when a plugin or dependency cannot be had (offline, or no network).
UNRESOLVED = re.compile(
    r"could not be resolved|Could not resolve dependencies|Non-resolvable parent POM|"
    r"Cannot access \S+ in offline mode|Could not transfer artifact|Unknown host"
)
NOT_INSTALLED = re.compile(r"(mvn|java): command not found")


def maven_work_dir(project: str) -> Path:
    return state_home() / "work" / "maven" / project


class MavenJobWithLogs(JobScript):
    """Build a Java project with Maven on a Hodei server, streaming the log in the background.

    --simple (default): `mvn clean install` of a one-class sample project with a JUnit test.
    --complex: `mvn clean package` of a two-module sample (a library and an app that uses
    it, both tested), then runs the app's jar.  --repo builds your project instead.
    Offline (the default when /usr/share/maven-repo exists), plugins come from Debian's
    packaged Maven repository: apt-get install maven libmaven-*-plugin-java libsurefire-java junit4.
    """

    PROGNAME = "maven_job_with_logs.sh"
    FOREGROUND_BY_DEFAULT = False

    simple = cli.Flag("--simple", help="the one-module sample: mvn clean install (default)")
    complex = cli.Flag(
        "--complex", excludes=["--simple"], help="the two-module sample: mvn clean package, then run the app's jar"
    )
    repo = cli.SwitchAttr(
        "--repo",
        str,
        argname="URL|PATH",
        help="build this project instead: a git URL (cloned) or a folder the worker can read (copied)",
    )
    goals = cli.SwitchAttr("--goals", str, argname="GOALS", help='Maven goals (default: "clean install"; --complex: "clean package")')
    offline = cli.Flag(
        "--offline", help="resolve from Debian's /usr/share/maven-repo only (default when it exists)"
    )
    online = cli.Flag("--online", excludes=["--offline"], help="resolve from Maven Central (needs the internet)")

    @property
    def project(self) -> str:
        return "complex" if self.complex else "simple"

    @property
    def mode(self) -> str:
        return "offline" if self.offline else "online" if self.online else "auto"

    def job_request(self) -> JobRequest:
        goals = self.goals or ("clean package" if self.complex else "clean install")
        source = self.repo or f"sample:{self.project}"
        env = {
            "MAVEN_WORK_DIR": str(maven_work_dir("repo" if self.repo else self.project)),
            "MAVEN_SOURCE": source,
            "MAVEN_GOALS": goals,
            "MAVEN_MODE": self.mode,
        }
        if self.complex and not self.repo:
            env["MAVEN_RUN_JAR"] = COMPLEX_APP_JAR
        return JobRequest(
            name=f"maven-{'repo' if self.repo else self.project}",
            payload=payload_file("maven.sh"),
            env=env,
            description=f"mvn -B {goals} of {source}",
            tags=["maven", self.project],
            bundle=[] if self.repo else [SAMPLES_DIR],
        )

    def summary_rows(self, outcome: JobOutcome) -> list[tuple[str, str]]:
        work_dir = maven_work_dir("repo" if self.repo else self.project)
        return [("Workspace", str(work_dir)), ("Local repo", str(work_dir / "repository"))]

    def explain_failure(self, client: HodeiClient, outcome: JobOutcome) -> str | None:
        log = "\n".join(job_log_lines(client, outcome.job_id))
        if NOT_INSTALLED.search(log):
            return f"❌ Maven or Java is not installed on the worker: apt-get install -y {DEBIAN_PACKAGES}"
        if UNRESOLVED.search(log):
            return (
                "❌ Maven could not resolve its plugins or dependencies (Maven's error is in the log above): "
                f"offline, install Debian's packaged repository with apt-get install -y {DEBIAN_PACKAGES}; "
                "or build with --online on a machine that reaches Maven Central"
            )
        return None


def main() -> None:
    MavenJobWithLogs.run()


if __name__ == "__main__":
    main()
