"""Shell completion inside the argparse commands (stream-logs, hodei): argcomplete's hook,
and the job ids a shell is offered.

Nothing here is imported at start-up beyond this small module: argcomplete is loaded only
when a shell asks for completions (it sets ``_ARGCOMPLETE``), and the server is asked only
then, with a deadline of ``JOB_IDS_WITHIN_S``; no server, no answer in time, or one that
cannot list jobs: nothing offered, nothing said.
"""

from __future__ import annotations

import argparse
import os

JOB_IDS_WITHIN_S = 1.0
OFFERED_JOBS = 100  # the newest jobs offered (a page of ListJobs)


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell and exit, when a shell asked for completions; else nothing."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)


def job_ids(prefix: str, parsed_args: argparse.Namespace, **_: object) -> dict[str, str]:
    """argcomplete's completer of a JOB_ID: the newest jobs' ids, each described by its name
    and status (zsh and fish show it), from the server the command line names."""
    from hodei_stream.api import status_name
    from hodei_stream.endpoint import ServerAddressError, resolve
    from hodei_stream.stream import messages
    from hodei_stream.stream.wire import Call, CallError

    try:
        server = resolve(getattr(parsed_args, "server", None))
        request = messages.encode_list_jobs(OFFERED_JOBS)
        method = "/hodei.JobExecutionService/ListJobs"
        answer = Call(server.target, method, request, timeout=JOB_IDS_WITHIN_S, settings=server.settings).unary()
        jobs = messages.decode_list_jobs(answer)
    except (CallError, messages.DecodeError, ServerAddressError, OSError, ValueError):
        return {}
    typed = prefix.lower()
    return {job.job_id: f"{job.name} ({status_name(job.status)})" for job in jobs if job.job_id.startswith(typed)}
