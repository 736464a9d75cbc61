"""The ``hodei`` command: submit, run (submit and stream), status, list and cancel jobs.

For people and scripts alike: ``hodei submit`` prints only the new job's id, ``hodei status
--json`` prints one JSON object, and every subcommand leaves with the exit statuses of
``hodei_stream.exit_codes`` (``hodei run`` exactly as stream-logs does).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence

from hodei_stream.api import (
    FINAL_STATUSES,
    MAX_JOB_TIMEOUT_S,
    MAX_LIST_LIMIT,
    STATUS_NAMES,
    check_job_id,
    duration_s,
    last_execution,
    status_name,
)
from hodei_stream.client import HodeiClient
from hodei_stream.command_line import UsageParser, bounded, silence_stdout
from hodei_stream.endpoint import Server, ServerAddressError, ensure_running, resolve
from hodei_stream.environment import Environment
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.stream import cli as stream_cli
from hodei_stream.stream import complete
from hodei_stream.stream.format import UNKNOWN_EXIT_CODE, format_duration, visible
from hodei_stream.stream.options import add_ci_options, parse_options


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="hodei", description="Submit and watch jobs on a Hodei Jobs Platform server.")
    parser.add_version()
    parser.add_argument(
        "--server", metavar="URL", help="host:port or unix:/path (default: $HODEI_GRPC_URL, else the embedded server)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def job_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--name", help="the job's name (default: the command)")
        sub.add_argument(
            "--timeout",
            type=bounded(float, 0, MAX_JOB_TIMEOUT_S, low_open=True, unit="s"),
            metavar="SECONDS",
            help=f"execution timeout, more than 0 and at most {MAX_JOB_TIMEOUT_S} (24 days): "
            "the job ends as TIMEOUT after it",
        )
        sub.add_argument(
            "--env", action="append", default=[], metavar="K=V", help="an environment variable for the job (repeatable)"
        )
        sub.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]", help="what the job runs")

    run = commands.add_parser("run", help="submit a job and stream its log until it ends (exit status as stream-logs)")
    job_options(run)
    run.add_argument(
        "--stream-option",
        action="append",
        default=[],
        metavar="OPT",
        help="pass an option to stream-logs (e.g. --stream-option=--json)",
    )
    add_ci_options(run)
    job_options(commands.add_parser("submit", help="submit a job and print its id"))
    status = commands.add_parser("status", help="a job's status, exit code and times")
    status.add_argument("job_id", metavar="JOB_ID").completer = complete.job_ids  # type: ignore[attr-defined]
    status.add_argument("--json", action="store_true", help="one JSON object on stdout")
    listing = commands.add_parser("list", help="recent jobs, newest first")
    listing.add_argument(
        "--limit",
        type=bounded(int, 1, MAX_LIST_LIMIT),
        default=20,
        metavar="N",
        help=f"at most N jobs (1 to {MAX_LIST_LIMIT}; default 20)",
    )
    listing.add_argument(
        "--status",
        type=status_numbers,
        action="append",
        default=[],
        metavar="STATUS",
        help="only jobs in this status, as hodei status prints it, in any case (repeatable, or a comma list)",
    )
    listing.add_argument("--name", type=name_pattern, metavar="REGEX", help="only jobs whose name REGEX matches")
    listing.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="only jobs with this tag (repeatable: all of them)"
    )
    listing.add_argument("--wide", action="store_true", help="a TAGS column as well")
    listing.add_argument("--json", action="store_true", help="one JSON object per job and line, as hodei status --json")
    cancel = commands.add_parser("cancel", help="cancel a job (its whole process group is stopped)")
    cancel.add_argument("job_id", metavar="JOB_ID").completer = complete.job_ids  # type: ignore[attr-defined]
    cancel.add_argument("--reason", default="cancelled with hodei cancel")
    commands.add_parser(
        "bench", help="benchmark stream-logs beside grpcurl/jq and a native client (hodei bench --help)"
    )
    completion = commands.add_parser(
        "completion", help="print the shell completion script of hodei, stream-logs and the job scripts"
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    return parser


def status_numbers(text: str) -> frozenset[int]:
    """``--status``: one status name or a comma list of them, in any case → their numbers."""
    wanted = [part.strip().upper() for part in text.split(",")]
    unknown = [part for part in wanted if part not in STATUS_NAMES]
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(f"'{text}' is not a status (one of {', '.join(STATUS_NAMES)})")
    return frozenset(STATUS_NAMES.index(part) for part in wanted)


def name_pattern(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"'{text}' is not a regular expression ({error})") from None


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    environment: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ClientError(f"--env '{pair}' is not K=V", ExitStatus.USAGE)
        environment[key] = value
    return environment


def submit(client: HodeiClient, args: argparse.Namespace) -> str:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise ClientError("no command given (hodei run -- COMMAND [ARG...])", ExitStatus.USAGE)
    return client.queue_job(
        name=args.name or " ".join(argv)[:80],
        command=argv[0],
        arguments=argv[1:],
        environment=parse_env(args.env),
        timeout_s=args.timeout,
    )


def exit_code_number(text: str) -> int | None:
    """The job's exit code as a number (the API carries it as text), None when it has none."""
    try:
        return int(text)
    except ValueError:
        return None


def describe(job: pb.GetJobResponse) -> dict[str, object]:
    """What ``hodei status`` reports, as plain data (also its --json output): always the
    same keys, numbers as numbers, None (JSON null) where there is no value."""
    execution = last_execution(job) or pb.JobExecution()  # not started: all empty
    started = execution.HasField("start_time")
    ended = started and execution.HasField("end_time")
    return {
        "job_id": job.job.job_id.value,
        "name": job.job.name,
        "status": status_name(job.status),
        "exit_code": exit_code_number(execution.exit_code),
        "error_message": execution.error_message or None,
        "started_at": execution.start_time.ToJsonString() if started else None,
        "ended_at": execution.end_time.ToJsonString() if ended else None,
        "duration_s": duration_s(job),
    }


def format_age(seconds: float) -> str:
    """How long ago, in the largest whole unit as ``kubectl get`` shows it: 45s, 12m, 3h, 2d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


def summary_duration_s(summary: pb.JobSummary) -> float | None:
    """Start to end, in seconds, as ``duration_s`` of ``hodei status``: None until the job ended
    (a running job's time so far would make the column mean two things)."""
    if summary.HasField("duration"):
        return summary.duration.ToNanoseconds() / 1e9
    if summary.HasField("started_at") and summary.HasField("completed_at"):
        return (summary.completed_at.ToNanoseconds() - summary.started_at.ToNanoseconds()) / 1e9
    return None


def listed_jobs(
    client: HodeiClient, args: argparse.Namespace
) -> Iterator[tuple[pb.JobSummary, pb.GetJobResponse | None]]:
    """The jobs ``hodei list`` shows, newest first, at most ``--limit``, each with its GetJob
    answer when a column or filter needs one (exit code, tags, --json), else None.

    The server is sent what it can filter (one status; a name that is plain text, as its
    search term), and every filter is applied here again: a Hodei platform ignores them, and
    the search term matches ids too.  With filters, one page of the most jobs a ListJobs
    answers is read, so that filtering here still fills ``--limit``.  ListJobs' summaries have
    no exit code and no tags: GetJob is asked per job, only for the jobs shown (and, for
    ``--tag``, those looked at until ``--limit`` matched), never more than that one page."""
    statuses = frozenset().union(*args.status)
    literal = args.name is not None and re.escape(args.name.pattern) == args.name.pattern
    filtered = bool(statuses or args.tag) or args.name is not None
    response = client.list_jobs(
        limit=MAX_LIST_LIMIT if filtered else args.limit,
        status=next(iter(statuses)) if len(statuses) == 1 else None,
        search_term=args.name.pattern if literal else "",
    )
    shown = 0
    for summary in response.jobs:
        if shown >= args.limit:
            return
        if statuses and summary.status not in statuses:
            continue
        if args.name is not None and not args.name.search(summary.name):
            continue
        needs_job = args.json or args.wide or args.tag or summary.status in FINAL_STATUSES
        try:
            job = client.get_job(summary.job_id.value) if needs_job else None
        except ClientError as error:
            if error.status != ExitStatus.NOT_FOUND:
                raise
            continue  # forgotten (retention) since ListJobs answered: no longer a job to list
        if args.tag and (job is None or not set(args.tag) <= set(job.job.tags)):
            continue
        shown += 1
        yield summary, job


def list_row(summary: pb.JobSummary, job: pb.GetJobResponse | None, now_s: float, wide: bool) -> list[str]:
    """One row of ``hodei list``'s table, ``-`` wherever the value is unknown."""
    execution = last_execution(job) if job is not None else None
    exit_code = exit_code_number(execution.exit_code) if execution is not None else None
    duration = summary_duration_s(summary)
    row = [
        summary.job_id.value,
        summary.name,
        status_name(summary.status),
        "-" if exit_code is None else str(exit_code),
        format_age(now_s - summary.created_at.ToNanoseconds() / 1e9) if summary.HasField("created_at") else "-",
        "-" if duration is None else format_duration(duration),
    ]
    if wide:
        row.append(",".join(job.job.tags) if job is not None and job.job.tags else "-")
    return row


def print_list(client: HodeiClient, args: argparse.Namespace, env: Environment) -> int:
    if args.json:
        for _, job in listed_jobs(client, args):
            assert job is not None  # --json asks GetJob for every job
            print(json.dumps(describe(job), ensure_ascii=False), file=env.stdout)
        return ExitStatus.OK
    header = ["ID", "NAME", "STATUS", "EXIT", "AGE", "DURATION", *(["TAGS"] if args.wide else [])]
    now_s = time.time()
    rows = [
        [for_people(cell, env) for cell in list_row(summary, job, now_s, args.wide)]
        for summary, job in listed_jobs(client, args)
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=env.stdout)
    print(f"(jobs shown: {len(rows)})", file=env.stderr)
    return ExitStatus.OK


def for_people(text: str, env: Environment) -> str:
    """A server-given text (a job's name, an error message) safe for this terminal: control
    characters escaped as in stream-logs; exact text into a pipe or file."""
    return visible(text) if env.stdout_isatty else text


# In the job id's place while ``hodei run`` checks the streamer's options, before it submits.
NO_JOB_YET = "00000000-0000-0000-0000-000000000000"


def ci_arguments(args: argparse.Namespace) -> list[str]:
    """``hodei run``'s CI options, as stream-logs takes them."""
    passed = ["--no-ci-groups"] if args.no_ci_groups else []
    for option, value in (("--ci", args.ci), ("--junit", args.junit)):
        if value:
            passed += [option, value]
    return passed


def dispatch(args: argparse.Namespace, server: Server, env: Environment) -> int:
    with HodeiClient(server) as client:
        if args.command == "submit":
            print(submit(client, args), file=env.stdout, flush=True)
            return ExitStatus.OK
        if args.command == "run":
            # The embedded server unnamed, so that the streamer may start it again if it dies.
            where = [] if server.embedded else ["--server", server.target]
            stream_argv = [*where, *ci_arguments(args), *args.stream_option]
            # The streamer's usage errors before the job exists, not after it was submitted.
            if (problem := stream_cli.usage_problem(parse_options([*stream_argv, NO_JOB_YET]), env)) is not None:
                raise ClientError(problem, ExitStatus.USAGE)
            return stream_cli.main([*stream_argv, submit(client, args)], env)
        if args.command == "status":
            report = describe(client.get_job(check_job_id(args.job_id)))
            if args.json:
                print(json.dumps(report, ensure_ascii=False), file=env.stdout)
            else:
                for key, value in report.items():
                    if key == "exit_code" and value is None and report["status"] == "FAILED":
                        value = UNKNOWN_EXIT_CODE.removeprefix("exit code ")  # the platform does not say
                    if value is None:
                        continue  # not there yet (times, exit code) or none at all
                    if key == "duration_s":  # seconds for scripts (--json), "1m05s" for people
                        key, value = "duration", format_duration(float(value))  # type: ignore[arg-type]
                    print(f"{key:>13}: {for_people(str(value), env)}", file=env.stdout)
            return ExitStatus.OK
        if args.command == "list":
            return print_list(client, args, env)
        if args.command == "cancel":
            answer = client.cancel_job(check_job_id(args.job_id), reason=args.reason)
            print(answer.message or ("cancelled" if answer.success else "not cancelled"), file=env.stderr)
            return ExitStatus.OK if answer.success else ExitStatus.JOB_FAILED
    raise AssertionError(f"unhandled command {args.command}")


def main(argv: Sequence[str] | None = None, environment: Environment | None = None) -> int:
    """``hodei``: its command line (``sys.argv`` by default) in this process's environment
    (or the one given); the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:  # its own options; imported only when asked for
        from hodei_stream.bench.__main__ import main as bench_main

        return bench_main(arguments[1:])
    parser = build_parser()
    complete.autocomplete(parser)
    args = parser.parse_args(arguments)
    env = Environment.of_process() if environment is None else environment
    if args.command == "completion":  # no server to ask
        from hodei_stream.completion import shell_script

        print(shell_script(args.shell), file=env.stdout, end="")
        return ExitStatus.OK
    try:
        server = resolve(args.server)
        ensure_running(server)
        status = dispatch(args, server, env)
        env.stdout.flush()  # here, not at exit, where a closed pipe would be a traceback
        return status
    except (ServerAddressError, ClientError) as error:
        print(f"hodei: {error}", file=env.stderr)
        return error.status
    except KeyboardInterrupt:
        print("\nhodei: interrupted", file=env.stderr)
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:  # our reader left (| head): what it wanted, it has
        silence_stdout()
        return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
