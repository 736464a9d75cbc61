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
