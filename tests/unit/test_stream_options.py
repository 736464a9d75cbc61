"""stream-logs' command line as a frozen ``Options`` value (hodei_stream/stream/cli.py):
every option the parser knows is a field, and a conflict is refused once, as a usage error."""

from __future__ import annotations

import pytest

from hodei_stream.stream.options import Options, build_parser, parse_options

JOB = "550e8400-e29b-41d4-a716-446655440000"


def test_every_option_of_the_parser_is_a_field() -> None:
    parsed = vars(build_parser().parse_args([JOB]))
    parsed.pop("version")  # -V prints and exits: nothing to keep
    assert set(parsed) == set(Options._fields)


def test_options_are_frozen_and_hold_tuples() -> None:
    options = parse_options(["--grep", "a", "--grep", "b", JOB, JOB])
    assert options.grep == ("a", "b")
    assert options.job_ids == (JOB, JOB)
    with pytest.raises(AttributeError):
        options.tail = 3  # type: ignore[misc]


def test_a_conflict_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        parse_options(["--invert", JOB])
    assert ended.value.code == 2
    assert capsys.readouterr().err == "stream-logs: --invert needs --grep (see stream-logs --help)\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "name the jobs: JOB_ID, or --all, --name REGEX, --tag TAG"),
        (["--all", "--name", "etl"], "--all takes every job: --name and --tag would narrow nothing"),
        (["--until-done", JOB], "--until-done is for --all/--name/--tag"),
        (["--since", "10m", "--until", "1h", JOB], "--since is after --until: no line is in between"),
        (["--since", "10m", "--no-history", JOB], "--since chooses history to show; --no-history shows none"),
        (["--level-strict", JOB], "--level-strict needs --level"),
        (["--since", "yesterday-ish", JOB], "argument --since: 'yesterday-ish' is not a time"),
        (["--name", "(", "--all"], "argument --name: bad regular expression '('"),
        (["--level", "loud", JOB], "argument --level: invalid choice: 'loud'"),
    ],
)
def test_many_jobs_and_window_conflicts_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as ended:
        parse_options(argv)
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"stream-logs: {message}"), err
    assert len(err.splitlines()) == 1


def test_selectors_alone_name_the_jobs() -> None:
    options = parse_options(["--name", "^etl-", "--name", "load", "--tag", "cicd", "--until-done", "--level", "WARN"])
    assert (options.job_ids, options.name, options.tag, options.level) == ((), ("^etl-", "load"), ("cicd",), "warn")
    assert options.selects
    assert not parse_options([JOB]).selects
