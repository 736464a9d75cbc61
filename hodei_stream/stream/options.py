"""stream-logs' command line: its options, the conflicts among them, and the line filter
they describe.  Parsed once into a frozen ``Options``; nothing here connects or writes."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from hodei_stream.ci.commands import CI_CHOICES
from hodei_stream.command_line import UsageParser, bounded
from hodei_stream.records import LogLine
from hodei_stream.stream import complete
from hodei_stream.stream.window import LEVEL_CHOICES, BadTime, parse_time, window_filter

DEFAULT_RECONNECT_TIMEOUT_S = 60.0
MAX_RECONNECT_TIMEOUT_S = 7 * 24 * 3600  # a week: finite, so a lost server is given up on some day

EPILOG = """\
exit status: 0 the job(s) completed; 1 a job failed, timed out or was cancelled; 2 usage
error; 3 no such job; 4 server unreachable, not a Hodei server, or it ended the call (or it
cannot list jobs, for --all/--name/--tag); 5 --no-follow or an --until reached, and the job
has not ended; 130 interrupted by you (the job goes on).  Several
jobs: the worst of their statuses (130, 4, 3, 2, 1, 5, 0 from worst to best).
on a terminal, control characters in log lines (but tab) are shown as \\xHH; --raw or a
pipe / file gets them as the job wrote them.
environment: HODEI_GRPC_URL (server when --server is not given), NO_COLOR, FORCE_COLOR,
HODEI_STREAM_HOME (the embedded server's state folder), HODEI_CI (the default of --ci);
GITHUB_ACTIONS=true / GITLAB_CI=true: what --ci auto finds."""


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(
        prog="stream-logs",
        description="Show Hodei jobs' logs live, each line the moment the job writes it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_version()
    job_ids = parser.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="job id(s) to follow (UUIDs)")
    job_ids.completer = complete.job_ids  # type: ignore[attr-defined]
    parser.add_argument(
        "--server", metavar="URL", help="host:port or unix:/path (default: $HODEI_GRPC_URL, else the embedded server)"
    )
    add_which_jobs(parser)
    add_what_to_show(parser)
    add_how_to_show(parser)
    add_ci_options(parser)
    connection = parser.add_argument_group("connection")
    connection.add_argument("--no-reconnect", action="store_true", help="fail at once when the connection drops")
    connection.add_argument(
        "--reconnect-timeout",
        type=bounded(float, 0, MAX_RECONNECT_TIMEOUT_S, unit="s"),
        metavar="S",
        help=f"give up reconnecting after S seconds (0 to {MAX_RECONNECT_TIMEOUT_S}; default 60)",
    )
    return parser


def add_which_jobs(parser: argparse.ArgumentParser) -> None:
    """Jobs chosen by what they are, besides the ids: those queued or running now, and
    those queued while stream-logs runs."""
    which = parser.add_argument_group("which jobs (besides the ids)")
    which.add_argument("--all", action="store_true", help="every job queued or running, and each one queued later")
    which.add_argument(
        "--name",
        action="append",
        default=[],
        type=regex,
        metavar="REGEX",
        help="jobs whose name matches REGEX (repeatable: any of them)",
    )
    which.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="jobs with this tag (repeatable: all of them)"
    )
    which.add_argument(
        "--until-done",
        action="store_true",
        help="with --all/--name/--tag: end when no matching job is left (default: until Ctrl+C)",
    )
    which.add_argument(
        "--prefix",
        choices=("name", "id", "none"),
        help="what labels each line of several jobs (default: name with --all/--name/--tag, else id)",
    )


def regex(text: str) -> str:
    """An argparse type: ``text`` when it is a regular expression, else a usage error."""
    try:
        re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"bad regular expression {text!r}: {error}") from None
    return text


def moment(text: str) -> int:
    """An argparse type: the time --since / --until names, in ns since the epoch."""
    try:
        return parse_time(text, time.time_ns())
    except BadTime as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_what_to_show(parser: argparse.ArgumentParser) -> None:
    """Which lines: history or not, and filters."""
    history = parser.add_argument_group("what to show")
    history.add_argument(
        "--tail", type=bounded(int, 0), metavar="N", help="only the last N lines of history (N >= 0), then follow"
    )
    history.add_argument("--no-history", action="store_true", help="only lines written from now on")
    history.add_argument(
        "--no-follow", action="store_true", help="print the history and exit, without waiting for the job"
    )
    history.add_argument(
        "--grep",
        action="append",
        default=[],
        metavar="REGEX",
        help="only lines matching REGEX (repeatable: any of them)",
    )
    history.add_argument("--invert", action="store_true", help="with --grep: only lines matching none of them")
    history.add_argument(
        "--since", type=moment, metavar="TIME", help="only lines written at or after TIME (10m, 2h, ISO 8601, 14:30)"
    )
    history.add_argument(
        "--until",
        type=moment,
        metavar="TIME",
        help="only lines written at or before TIME; a TIME to come (+10m, 17:00) ends the follow then",
    )
    history.add_argument(
        "--level",
        type=str.lower,
        choices=LEVEL_CHOICES,
        help="only lines of this level and above (lines with no level word are kept)",
    )
    history.add_argument("--level-strict", action="store_true", help="with --level: drop lines with no level word")
    streams = history.add_mutually_exclusive_group()
    streams.add_argument("--stdout-only", action="store_true", help="only the job's stdout lines")
    streams.add_argument("--stderr-only", action="store_true", help="only the job's stderr lines")


def add_how_to_show(parser: argparse.ArgumentParser) -> None:
    """How the lines look, and where they go."""
    look = parser.add_argument_group("how to show it")
    look.add_argument(
        "--color",
        "--colour",
        choices=("auto", "always", "never"),
        default="auto",
        help="colours (auto: only on a terminal; NO_COLOR/FORCE_COLOR honoured)",
    )
    look.add_argument("--no-timestamps", action="store_true", help="leave out the time of each line")
    look.add_argument(
        "--arrival-time", action="store_true", help="show when each line arrived here, not when the job wrote it"
    )
    look.add_argument("-q", "--quiet", action="store_true", help="log lines only: no header, no end line")
    look.add_argument("--stderr", action="store_true", help="write everything to stderr, as the original client did")
    look.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line on stdout (job_id, sequence, timestamp, stream, line)",
    )
    look.add_argument("-o", "--output", metavar="FILE", help="also write plain lines to FILE, flushed per line")
    look.add_argument(
        "--raw",
        action="store_true",
        help="pass control characters (escape sequences) to the terminal as the job wrote them",
    )
    look.add_argument(
        "--stats", action="store_true", help="at the end: line count and delivery latency p50/p99/max (stderr)"
    )


def add_ci_options(parser: argparse.ArgumentParser) -> None:
    """Output for a CI system, and reports for it."""
    ci = parser.add_argument_group("in CI")
    ci.add_argument(
        "--ci",
        choices=CI_CHOICES,
        help="CI output: a collapsible group per job, annotations, job lines kept from issuing "
        "CI commands (default: $HODEI_CI, else auto: GitHub Actions or GitLab CI when detected)",
    )
    ci.add_argument(
        "--no-ci-groups",
        action="store_true",
        help="in CI, only keep the job's lines from issuing commands: no group, no annotation "
        "(for a caller that makes its own)",
    )
    ci.add_argument("--junit", metavar="FILE", help="write a JUnit XML report: a testcase per job")


class Options(NamedTuple):
    """stream-logs' command line, parsed: what to follow, what to show and how, how to connect."""

    job_ids: tuple[str, ...]
    server: str | None
    tail: int | None
    no_history: bool
    no_follow: bool
    grep: tuple[str, ...]
    invert: bool
    stdout_only: bool
    stderr_only: bool
    since: int | None  # ns since the epoch
    until: int | None
    level: str | None
    level_strict: bool
    all: bool
    name: tuple[str, ...]
    tag: tuple[str, ...]
    until_done: bool
    prefix: str | None
    color: str
    no_timestamps: bool
    arrival_time: bool
    quiet: bool
    stderr: bool
    json: bool
    output: str | None
    raw: bool
    stats: bool
    no_reconnect: bool
    reconnect_timeout: float | None
    ci: str | None
    no_ci_groups: bool
    junit: str | None

    @classmethod
    def of(cls, parsed: argparse.Namespace) -> Options:
        """The options ``build_parser()`` parsed, frozen (its lists as tuples)."""
        values = {name: getattr(parsed, name) for name in cls._fields}
        lists = {name: tuple(getattr(parsed, name)) for name in ("job_ids", "grep", "name", "tag")}
        return cls(**{**values, **lists})

    @property
    def selects(self) -> bool:
        """Whether jobs are chosen by what they are (--all, --name, --tag), not only by id."""
        return self.all or bool(self.name) or bool(self.tag)


def parse_options(argv: Sequence[str] | None) -> Options:
    """The command line as ``Options``, checked once: a usage error ends the command (exit 2)."""
    parser = build_parser()
    complete.autocomplete(parser)
    options = Options.of(parser.parse_args(argv))
    if (problem := conflict(options)) is not None:
        parser.error(problem)
    return options


def conflict(options: Options) -> str | None:
    """Options that ask for two incompatible things: the usage error to give, or None."""
    if not options.job_ids and not options.selects:
        return "name the jobs: JOB_ID, or --all, --name REGEX, --tag TAG"
    if options.all and (options.name or options.tag):
        return "--all takes every job: --name and --tag would narrow nothing"
    if options.until_done and not options.selects:
        return "--until-done is for --all/--name/--tag (jobs named by id are followed until they end)"
    if options.since is not None and options.until is not None and options.since > options.until:
        return "--since is after --until: no line is in between"
    if options.no_history and options.since is not None:
        return "--since chooses history to show; --no-history shows none: choose one"
    if options.level_strict and options.level is None:
        return "--level-strict needs --level"
    if options.no_follow and (options.no_history or options.tail == 0):
        return f"{'--no-history' if options.no_history else '--tail 0'} and --no-follow together would show nothing"
    if options.no_history and options.tail is not None:
        return "--tail N shows history; --no-history shows none: choose one"
    if options.invert and not options.grep:
        return "--invert needs --grep"
    if options.no_reconnect and options.reconnect_timeout is not None:
        return "--reconnect-timeout has no effect with --no-reconnect"
    if options.json and options.raw:
        return "--json escapes every control character: --raw does not apply"
    if options.json and options.ci in ("github", "gitlab"):
        return "--json is for a program, not for a CI's log: --ci does not apply"
    if options.json and options.color == "always":
        return "--json is never coloured: --color=always does not apply"
    if options.no_timestamps and options.arrival_time:
        return "--arrival-time changes the time shown; --no-timestamps shows none"
    return None


def line_filter(options: Options) -> Callable[[LogLine], bool] | None:
    """The predicate --grep/--invert/--stdout-only/--stderr-only/--since/--until/--level
    describe (None: keep all)."""
    by_text = text_filter(options)
    by_window = window_filter(options.since, options.until, options.level, options.level_strict)
    if by_text is None or by_window is None:
        return by_text or by_window

    def keep(line: LogLine) -> bool:
        return by_window(line) and by_text(line)

    return keep


def text_filter(options: Options) -> Callable[[LogLine], bool] | None:
    """The predicate --grep/--invert/--stdout-only/--stderr-only describe (None: keep all)."""
    patterns = [re.compile(p) for p in options.grep]
    if not patterns and not options.stdout_only and not options.stderr_only:
        return None

    def keep(line: LogLine) -> bool:
        if (options.stdout_only and line.is_stderr) or (options.stderr_only and not line.is_stderr):
            return False
        if patterns:
            return bool(any(p.search(line.text) for p in patterns) != options.invert)
        return True

    return keep
