"""``maven_job_with_logs.sh`` end to end: real ``mvn -B`` builds of the shipped samples, offline
from Debian's Maven repository (the packages .ci/run installs), streamed in the background."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import ServerProcess

from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ExitStatus

from .scripts import Run, launch, summary_value

DEBIAN_REPO = Path("/usr/share/maven-repo")
SAMPLES = Path(__file__).parents[2] / "hodei_stream" / "jobs" / "samples" / "maven"
POM = "{http://maven.apache.org/POM/4.0.0}"


def pinned_artifacts() -> list[tuple[str, str, str]]:
    """(groupId, artifactId, version) of every plugin and dependency the samples' parent POM pins."""
    pinned = []
    for element in ElementTree.parse(SAMPLES / "parent" / "pom.xml").iter():
        if element.tag in (f"{POM}plugin", f"{POM}dependency"):
            default_group = "org.apache.maven.plugins" if element.tag == f"{POM}plugin" else ""
            group = element.findtext(f"{POM}groupId", default_group)
            pinned.append((group, element.findtext(f"{POM}artifactId", ""), element.findtext(f"{POM}version", "")))
    return pinned


def missing_prerequisite() -> str | None:
    """Why the Maven tests cannot run here, or None.  Offline, Maven resolves each pinned
    plugin and dependency as exactly this jar in Debian's repository: check those files."""
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            return f"needs {tool} on PATH (apt-get install default-jdk-headless maven; see the README's Tests section)"
    for group, artifact, version in pinned_artifacts():
        jar = DEBIAN_REPO / group.replace(".", "/") / artifact / version / f"{artifact}-{version}.jar"
        if not jar.is_file():
            return (
                f"needs {group}:{artifact}:{version} from Debian's Maven packages ({jar} is missing: "
                "apt-get install the packages the README's Tests section lists)"
            )
    return None


pytestmark = pytest.mark.skipif(missing_prerequisite() is not None, reason=str(missing_prerequisite()))
MAVEN_TIMEOUT_S = 240.0


@pytest.mark.timeout(300)
def test_simple_builds_tests_and_installs_the_jar_into_the_jobs_repository(server: Server, home: Path) -> None:
    run = launch("maven_job_with_logs.sh", home, "--simple")
    assert run.finish(MAVEN_TIMEOUT_S) == 0, run.all_text[-3000:]
    out = "\n".join(run.out_text)
    assert "auto chose offline" in out and "-o -Daether.offline.protocols=file" in out
    assert "Tests run: 3, Failures: 0, Errors: 0, Skipped: 0" in out
    assert "BUILD SUCCESS" in out
    # Background mode: the status lines on stderr, the log through `| cat` on stdout.
    assert re.search(r"\[STATUS\] job \S+ is COMPLETED", run.err_text)
    repository = home / "work" / "maven" / "simple" / "repository"
    installed = repository / "com" / "example" / "hodei" / "greeter" / "1.0.0" / "greeter-1.0.0.jar"
    with zipfile.ZipFile(installed) as jar:
        assert "com/example/greeter/Greeter.class" in jar.namelist()
    assert "installed com/example/hodei/greeter/1.0.0/greeter-1.0.0.jar" in out
    assert summary_value(run, "Local repo") == str(repository)
    assert "COMPLETED" in summary_value(run, "Status")


@pytest.mark.timeout(300)
def test_complex_builds_both_modules_and_runs_the_app(server: Server, home: Path) -> None:
    run = launch("maven_job_with_logs.sh", home, "--complex")
    assert run.finish(MAVEN_TIMEOUT_S) == 0, run.all_text[-3000:]
    out = "\n".join(run.out_text)
    project = home / "work" / "maven" / "complex" / "project" / "complex"
    for module in ("stock-core", "stock-app"):
        assert (project / module / "target" / f"{module}-1.0.0.jar").is_file()
        assert re.search(rf"{module} \.+ SUCCESS", out)
    assert "Tests run: 4, Failures: 0" in out and "Tests run: 1, Failures: 0" in out
    # The app's own output, computed by the core module's Ledger from the shipped movements.
    assert "Applied 8 movements to 4 SKUs" in out
    assert "Reorder (below 20): HINGE-40, WASHER-M6" in out


def failure_hints(run: Run) -> list[str]:
    return [line for line in run.err_text.splitlines() if line.startswith("❌")]


def standalone_project(folder: Path, plugins: str = "") -> Path:
    """A one-file Maven project with no parent, and ``plugins`` (XML) in its build."""
    folder.mkdir(parents=True)
    (folder / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>com.example</groupId><artifactId>standalone</artifactId><version>1.0</version>"
        f"<build><plugins>{plugins}</plugins></build></project>"
    )
    return folder


@pytest.mark.timeout(300)
def test_a_plugin_missing_from_debians_repository_gets_the_install_hint(
    server: Server, home: Path, tmp_path: Path
) -> None:
    project = standalone_project(
        tmp_path / "project", "<plugin><artifactId>maven-clean-plugin</artifactId><version>9.9.9</version></plugin>"
    )
    run = launch("maven_job_with_logs.sh", home, "--repo", str(project), "--goals", "clean", "--offline")
    assert run.finish(MAVEN_TIMEOUT_S) == ExitStatus.JOB_FAILED
    assert "maven-clean-plugin:9.9.9 or one of its dependencies could not be resolved" in "\n".join(run.out_text)
    hints = failure_hints(run)
    assert len(hints) == 1 and "could not resolve its plugins" in hints[0], run.err_text
    assert "apt-get install -y maven libmaven-clean-plugin-java" in hints[0]
    assert "FAILED" in summary_value(run, "Status")


@pytest.mark.timeout(300)
def test_a_project_error_gets_no_plugin_hint(server: Server, home: Path) -> None:
    # The sample alone: its parent POM (../parent) is not there, and is in no repository.
    run = launch("maven_job_with_logs.sh", home, "--repo", str(SAMPLES / "simple"), "--offline")
    assert run.finish(MAVEN_TIMEOUT_S) == ExitStatus.JOB_FAILED
    assert "Non-resolvable parent POM" in "\n".join(run.out_text)
    assert failure_hints(run) == [], run.err_text
    assert "apt-get" not in run.err_text and "--online" not in run.err_text


@pytest.mark.timeout(300)
def test_online_without_a_network_does_not_suggest_online(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, launch_server: Callable[..., ServerProcess]
) -> None:
    # No network, made sure on any machine: the jobs' HOME has a Maven settings file whose
    # mirror of every repository is a closed loopback port.
    job_home = tmp_path / "job-home"
    (job_home / ".m2").mkdir(parents=True)
    (job_home / ".m2" / "settings.xml").write_text(
        "<settings><mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf>"
        "<url>https://127.0.0.1:1/maven2</url></mirror></mirrors></settings>"
    )
    # Java takes user.home from the password file, not $HOME; mvn sources $HOME/.mavenrc.
    (job_home / ".mavenrc").write_text('MAVEN_OPTS="$MAVEN_OPTS -Duser.home=$HOME"\n')
    monkeypatch.setenv("HOME", str(job_home))
    launch_server(home)
    run = launch("maven_job_with_logs.sh", home, "--simple", "--online")
    assert run.finish(MAVEN_TIMEOUT_S) == ExitStatus.JOB_FAILED
    assert "from/to nowhere (https://127.0.0.1:1/maven2)" in "\n".join(run.out_text), "the test's mirror was not used"
    hints = failure_hints(run)
    assert len(hints) == 1 and "could not reach Maven Central" in hints[0], run.err_text
    assert "--online" not in hints[0]


@pytest.mark.timeout(300)
def test_goals_are_passed_literally_and_a_file_url_clones_quietly(server: Server, home: Path, tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("needs git, to clone a file:// URL")
    project = standalone_project(tmp_path / "project.git")
    for command in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "samples"],
    ):
        subprocess.run(["git", "-C", str(project), *command], check=True)
    # The project folder holds pom.xml, which "*" would become if the payload's shell expanded it.
    run = launch("maven_job_with_logs.sh", home, "--repo", f"file://{project}", "--goals", "*", "--offline")
    assert run.finish(MAVEN_TIMEOUT_S) == ExitStatus.JOB_FAILED
    out = "\n".join(run.out_text)
    assert 'Unknown lifecycle phase "*"' in out, out[-3000:]
    assert "Receiving objects" not in run.all_text and "Cloning into" not in run.all_text
    assert max(len(line) for line in run.out_text) < 1000
