"""``maven_job_with_logs.sh`` end to end: real ``mvn -B`` builds of the shipped samples, offline
from Debian's Maven repository (the packages .ci/run installs), streamed in the background."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import pytest

from hodei_stream.endpoint import Server
from hodei_stream.exit_codes import ExitStatus

from .scripts import launch, summary_value

pytestmark = pytest.mark.skipif(
    not (shutil.which("mvn") and Path("/usr/share/maven-repo/org/apache/maven/plugins").is_dir()),
    reason="needs Maven and Debian's Maven plugin packages (see .ci/run)",
)
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


@pytest.mark.timeout(300)
def test_unresolvable_dependency_fails_with_one_line_that_says_how_to_fix_it(server: Server, home: Path, tmp_path: Path) -> None:
    project = tmp_path / "needs-the-internet"
    shutil.copytree(Path(__file__).parents[2] / "hodei_stream" / "jobs" / "samples" / "maven" / "simple", project)
    pom = project / "pom.xml"
    pom.write_text(
        pom.read_text()
        .replace("<relativePath>../parent/pom.xml</relativePath>", "")
        .replace("<artifactId>samples-parent</artifactId>", "<artifactId>not-in-debian-parent</artifactId>")
    )
    run = launch("maven_job_with_logs.sh", home, "--repo", str(project), "--offline")
    assert run.finish(MAVEN_TIMEOUT_S) == ExitStatus.JOB_FAILED
    assert "Non-resolvable parent POM" in "\n".join(run.out_text)
    hints = [line for line in run.err_text.splitlines() if "could not resolve" in line]
    assert len(hints) == 1 and "apt-get install -y maven libmaven-clean-plugin-java" in hints[0]
    assert "FAILED" in summary_value(run, "Status")
