"""The ``hodei`` command: submit, run (submit and stream), status, list and cancel jobs.

For people and scripts alike: ``hodei submit`` prints only the new job's id, ``hodei status
--json`` prints one JSON object, and every subcommand leaves with the exit statuses of
``hodei_stream.exit_codes`` (``hodei run`` exactly as stream-logs does).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from hodei_stream.api import MAX_JOB_TIMEOUT_S, MAX_LIST_LIMIT, check_job_id, duration_s, last_execution, status_name
from hodei_stream.client import HodeiClient
from hodei_stream.command_line import UsageParser, bounded, silence_stdout
from hodei_stream.endpoint import Server, ServerAddressError, ensure_running, resolve
from hodei_stream.environment import Environment
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.proto import hodei_pb2 as pb
from hodei_stream.stream import cli as stream_cli
from hodei_stream.stream.format import UNKNOWN_EXIT_CODE, format_duration, visible


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
    job_options(commands.add_parser("submit", help="submit a job and print its id"))
    status = commands.add_parser("status", help="a job's status, exit code and times")
    status.add_argument("job_id", metavar="JOB_ID")
    status.add_argument("--json", action="store_true", help="one JSON object on stdout")
    listing = commands.add_parser("list", help="recent jobs, newest first")
    listing.add_argument(
        "--limit",
        type=bounded(int, 1, MAX_LIST_LIMIT),
        default=20,
        metavar="N",
        help=f"at most N jobs (1 to {MAX_LIST_LIMIT}; default 20)",
    )
    cancel = commands.add_parser("cancel", help="cancel a job (its whole process group is stopped)")
    cancel.add_argument("job_id", metavar="JOB_ID")
    cancel.add_argument("--reason", default="cancelled with hodei cancel")
    commands.add_parser(
        "bench", help="benchmark stream-logs beside grpcurl/jq and a native client (hodei bench --help)"
    )
    return parser


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


def for_people(text: str, env: Environment) -> str:
    """A server-given text (a job's name, an error message) safe for this terminal: control
    characters escaped as in stream-logs; exact text into a pipe or file."""
    return visible(text) if env.stdout_isatty else text


def dispatch(args: argparse.Namespace, server: Server, env: Environment) -> int:
    with HodeiClient(server) as client:
        if args.command == "submit":
            print(submit(client, args), file=env.stdout, flush=True)
            return ExitStatus.OK
        if args.command == "run":
            job_id = submit(client, args)
            # The embedded server unnamed, so that the streamer may start it again if it dies.
            where = [] if server.embedded else ["--server", server.target]
            return stream_cli.main([*where, *args.stream_option, job_id], env)
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
            response = client.list_jobs(limit=args.limit)
            for summary in response.jobs:
                name = for_people(summary.name, env)
                print(f"{summary.job_id.value}  {status_name(summary.status):<9}  {name}", file=env.stdout)
            print(f"({len(response.jobs)} of {response.total_count} jobs)", file=env.stderr)
            return ExitStatus.OK
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
    args = build_parser().parse_args(arguments)
    env = Environment.of_process() if environment is None else environment
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
