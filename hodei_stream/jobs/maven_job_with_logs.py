"""``maven_job_with_logs.sh``: a real ``mvn -B`` build as a job, its log streamed in the background.

The job (``payloads/maven.sh``) carries the sample projects (``samples/maven``, shipped as a
compressed bundle) or fetches ``--repo``; it builds in ``maven/<project>`` of the script's
``Workspace`` (the state folder with the embedded server, ``--workspace``, or the job's own
working folder on its worker) with a local Maven repository of its own.  While the log streams in the background this
process polls the job's status (``[WAIT]`` while it waits for a worker).  A failure gets one
line at the end only where its cause is sure: Maven or Java missing; offline, a plugin (or a
dependency) not in Debian's repository; online, Maven Central out of reach.  A project's own
error (a missing parent POM, a compile error) gets none: Maven's [ERROR] lines say it.
--repo is checked before anything starts: a folder that does not exist is a usage error.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from plumbum import cli

from hodei_stream.client import HodeiClient
from hodei_stream.jobs.payload import payload_file
from hodei_stream.jobs.workspace import WorkspaceScript
from hodei_stream.jobs.wrapper import (
    JobOutcome,
    JobRequest,
    UsageError,
    job_log_lines,
)

SAMPLES_DIR = Path(__file__).with_name("samples") / "maven"
# The complex sample's app, runnable from the build tree (its manifest points at the core jar).
COMPLEX_APP_JAR = "stock-app/target/stock-app-1.0.0.jar"
DEBIAN_PACKAGES = (
    "maven libmaven-clean-plugin-java libmaven-resources-plugin-java libmaven-compiler-plugin-java "
    "libsurefire-java libmaven-jar-plugin-java libmaven-install-plugin-java junit4"
)
# Maven's own words when it could not have a plugin (or what a plugin needs to run).
PLUGIN_UNRESOLVED = re.compile(
    r"Plugin \S+ or one of its dependencies could not be resolved|Error resolving version for plugin|"
    r"Failed to read artifact descriptor for org\.apache\.maven\.plugins|Unable to generate classpath"
)
DEPENDENCY_UNRESOLVED = re.compile(r"Could not resolve dependencies for project")
# ... and when the network, not the project, was the trouble.
NETWORK_FAILED = re.compile(
    r"Unknown host|UnknownHostException|Could not transfer artifact|Network is unreachable|"
    r"Connection (refused|timed out)|transfer failed"
)
# How the payload says which way it resolved: "[2/4] Resolving: offline" / "auto chose online".
RESOLVING = re.compile(r"\[2/4\] Resolving: (?:auto chose )?(offline|online)")
NOT_INSTALLED = re.compile(r"(mvn|java): command not found")
# A --repo that git can clone: a URL (https://, ssh://, git://, file://) or scp-like user@host:path.
GIT_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^[^/:]+@[^/:]+:")


class MavenJobWithLogs(WorkspaceScript):
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
        help="build this project instead: a git URL (cloned) or a folder (copied; carried in the job "
        "when the worker cannot read it)",
    )
    goals = cli.SwitchAttr(
        "--goals", str, argname="GOALS", help='Maven goals (default: "clean install"; --complex: "clean package")'
    )
    offline = cli.Flag("--offline", help="resolve from Debian's /usr/share/maven-repo only (default when it exists)")
    online = cli.Flag("--online", excludes=["--offline"], help="resolve from Maven Central (needs the internet)")

    def check_usage(self) -> None:
        if self.repo is not None:
            self.repo = checked_repo(self.repo)

    @property
    def project(self) -> str:
        return "complex" if self.complex else "simple"

    @property
    def work_folder(self) -> PurePosixPath:
        return self.files.folder("maven") / ("repo" if self.repo else self.project)

    @property
    def mode(self) -> str:
        return "offline" if self.offline else "online" if self.online else "auto"

    def job_request(self) -> JobRequest:
        goals = self.goals or ("clean package" if self.complex else "clean install")
        source, bundle = self.repo or f"sample:{self.project}", [] if self.repo else [SAMPLES_DIR]
        if self.repo and not GIT_URL.match(self.repo) and not self.files.reaches(PurePosixPath(self.repo)):
            # A folder of this machine that the worker cannot read: the job carries a copy.
            source, bundle = f"bundle:{Path(self.repo).name}", [Path(self.repo)]
        env = {
            "MAVEN_WORK_DIR": str(self.work_folder),
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
            description=f"mvn -B {goals} of {self.repo or source}",
            tags=["maven", self.project],
            bundle=bundle,
        )

    def summary_rows(self, outcome: JobOutcome) -> list[tuple[str, str]]:
        work = self.work_folder
        return [("Workspace", self.files.where(work)), ("Local repo", self.files.where(work / "repository"))]

    def explain_failure(self, client: HodeiClient, outcome: JobOutcome) -> str | None:
        """A hint only where the cause is sure: the tools missing, or resolution (not the project) failing."""
        log = "\n".join(job_log_lines(client, outcome))
        if NOT_INSTALLED.search(log):
            return f"❌ Maven or Java is not installed on the worker: apt-get install -y {DEBIAN_PACKAGES}"
        resolving = RESOLVING.search(log)
        if resolving is None:  # the build never got as far as Maven
            return None
        if resolving[1] == "online":
            if NETWORK_FAILED.search(log):
                return (
                    "❌ Maven could not reach Maven Central from the worker (Maven's error is in the log above): "
                    "check its network or proxy, or build --offline with Debian's packages: "
                    f"apt-get install -y {DEBIAN_PACKAGES}"
                )
            return None
        if PLUGIN_UNRESOLVED.search(log):
            return (
                "❌ Maven could not resolve its plugins offline (Maven's error is in the log above): "
                f"install Debian's packaged Maven plugins with apt-get install -y {DEBIAN_PACKAGES}; "
                "or build with --online on a machine that reaches Maven Central"
            )
        if DEPENDENCY_UNRESOLVED.search(log):
            return (
                "❌ a dependency of the project is not in Debian's Maven repository "
                "(Maven's error is in the log above): "
                "build with --online on a machine that reaches Maven Central"
            )
        return None  # the project's own error (a missing parent POM, a compile error): Maven said it


def checked_repo(repo: str) -> str:
    """--repo as the job needs it: a git URL as given, a folder made absolute; else ``UsageError``.

    A folder is checked here, where the user can fix it, rather than left to fail in the job
    (the embedded server's worker reads the same files, and so does any worker when the folder
    is in the named workspace; otherwise the job carries a copy of it).
    """
    if repo.startswith("file://"):
        if not Path(repo.removeprefix("file://")).is_dir():
            raise UsageError(f"--repo {repo}: no such folder")
        return repo
    if GIT_URL.match(repo):
        return repo
    folder = Path(repo).expanduser()
    if not folder.is_dir():
        raise UsageError(f"--repo {repo}: no such folder (give a folder or a git URL)")
    return str(folder.resolve())


def main() -> None:
    MavenJobWithLogs.run()


if __name__ == "__main__":
    main()
