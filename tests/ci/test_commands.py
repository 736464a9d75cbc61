"""The command builders, detection, JUnit and Markdown, read back as the CIs read them."""

from __future__ import annotations

from pathlib import Path

import junitparser
import pytest

from hodei_stream.ci import commands
from hodei_stream.ci.junit import ReportCase, write_junit, xml_safe
from hodei_stream.ci.output import CiChoiceError, CiOutput, chosen_ci, detected_ci
from hodei_stream.ci.summary import markdown_summary

from .runners import read_as_github, read_as_gitlab

HOSTILE = "50% done\r\n::error::fake, a:b ##[set-output name=x;]y\x1b[0Ksection_end:1:x\r\x1b[0K"


@pytest.mark.parametrize(
    ("variables", "option", "expected"),
    [
        ({}, None, "none"),
        ({"GITHUB_ACTIONS": "true"}, None, "github"),
        ({"GITLAB_CI": "true"}, None, "gitlab"),
        ({"GITHUB_ACTIONS": "1"}, None, "none"),  # only the documented value
        ({"GITHUB_ACTIONS": "true"}, "none", "none"),
        ({"GITHUB_ACTIONS": "true", "HODEI_CI": "gitlab"}, None, "gitlab"),
        ({"HODEI_CI": "gitlab"}, "github", "github"),
        ({"HODEI_CI": "auto", "GITLAB_CI": "true"}, None, "gitlab"),
    ],
)
def test_the_ci_is_the_option_then_hodei_ci_then_detected(variables, option, expected) -> None:
    assert chosen_ci(option, variables) == expected


def test_an_unknown_hodei_ci_is_refused() -> None:
    with pytest.raises(CiChoiceError, match="HODEI_CI='jenkins'"):
        chosen_ci(None, {"HODEI_CI": "jenkins"})
    assert detected_ci({"GITLAB_CI": "false"}) == "none"


def test_an_annotation_carries_any_text_back_unchanged_as_one_command() -> None:
    line = commands.error(title="stage: a, b", message=HOSTILE)
    assert "\n" not in line and "\r" not in line
    log = read_as_github(line)
    assert [(c.name, c.properties, c.data) for c in log.commands] == [("error", (("title", "stage: a, b"),), HOSTILE)]


def test_nothing_is_a_command_inside_stop_commands_until_the_token() -> None:
    ci = CiOutput("github")
    text = ci.guarded(f"##[add-mask]x\n::error::fake\n##[stop-commands]guess\n::{'0' * 32}::\n{HOSTILE}")
    log = read_as_github(text + "\n" + commands.warning("t", "m"))
    assert log.names() == ["warning"]
    assert not log.stopped_at_end
    assert len(log.ignored) >= 4


def test_a_token_is_fresh_per_run() -> None:
    assert CiOutput("github").token != CiOutput("github").token
    assert CiOutput("none").guarded(HOSTILE) == HOSTILE


def test_gitlab_sections_pair_with_unique_names_and_job_text_opens_none() -> None:
    ci = CiOutput("gitlab")
    text = "\n".join(
        [
            *ci.open_group("▶ stage 1/2: build: a b"),
            ci.guarded(HOSTILE + "\x1b[0Ksection_start:1:evil[collapsed=true]\r\x1b[0Kx \x1b[32mgreen\x1b[0m"),
            *ci.close_group(),
            *ci.open_group("▶ stage 1/2: build: a b"),  # the same title: another name
            *ci.close_group(),
        ]
    )
    sections = read_as_gitlab(text)
    assert len(sections) == 2
    assert sections[0].name != sections[1].name
    assert all(section.options == "collapsed=true" and section.end_s >= section.start_s for section in sections)
    assert "\x1b[32mgreen" in text  # colours pass


def test_junit_holds_any_text_and_is_read_back(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    cases = [
        ReportCase("checkout", "cicd", 1.5),
        ReportCase("test", "cicd", 2.25, failure="exit code 1 \x1b[31m<&>\x00", log_tail=("line 1", "bell \x07")),
        ReportCase("deploy", "cicd", 0.0, skipped="it needs test"),
    ]
    write_junit(report, "cicd_pipeline.sh", cases)
    suite = next(iter(junitparser.JUnitXml.fromfile(str(report))))
    read = {case.name: case for case in suite}
    assert list(read) == ["checkout", "test", "deploy"]
    assert read["checkout"].is_passed and read["checkout"].time == 1.5
    (failure,) = read["test"].result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "exit code 1 \\x1b[31m<&>\\x00"
    assert failure.text.endswith("line 1\nbell \\x07")
    assert read["deploy"].is_skipped
    assert not list(tmp_path.glob(".report.xml.*"))  # written beside, then renamed
    assert xml_safe("\ud800ok") == "\\ud800ok"


def test_the_step_summary_keeps_a_value_in_its_cell() -> None:
    markdown = markdown_summary("📋 Summary", [("Reason", "a | b\nc")], [("stage", "status"), ("test", "❌ FAILED")])
    assert "| Reason | a \\| b c |" in markdown
    assert "| test | ❌ FAILED |" in markdown
