"""``python -m hodei_stream.bench [--setup] [--quick] [--server URL] [--only SCENARIO]``.

Runs the scenarios against a fresh embedded server (or, with ``--server``, the client-side
ones against your own platform), prints a table per scenario, and writes everything as JSON.
``--setup`` first installs the baselines (idempotent; see ``tools.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from hodei_stream.bench import batching, burst, fanout, flood, history, latency, load, startup, tools
from hodei_stream.bench.clients import DESCRIPTIONS, all_clients
from hodei_stream.bench.plan import QUICK, Plan, Sizes
from hodei_stream.bench.report import Row, table, write_json
from hodei_stream.bench.servers import EmbeddedServerProcess, ServerStartError
from hodei_stream.endpoint import ServerAddressError, parse_url

SCENARIOS: dict[str, Callable[[Plan], list[Row]]] = {
    "latency": latency.run,
    "burst": burst.run,
    "startup": startup.run,
    "fanout": fanout.run,
    "batching": batching.run,
    "load": load.run,
    "history": history.run,
    "flood": flood.run,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hodei bench", description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setup", action="store_true", help="install the baselines first (grpcurl, jq, native client)")
    parser.add_argument("--setup-only", action="store_true", help="install the baselines and exit")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a minute or so")
    parser.add_argument("--server", metavar="URL", help="run the client-side scenarios against this server")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SCENARIOS),
        metavar="SCENARIO",
        help=f"run only these scenarios (repeatable: {', '.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("hodei-bench.json"),
        metavar="FILE",
        help="where the results go as JSON (default %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    found = tools.setup() if args.setup or args.setup_only else tools.locate()
    if args.setup_only:
        for name, why in found.missing.items():
            print(f"bench setup: {name}: {why}", file=sys.stderr)
        return 0
    try:
        user_target = parse_url(args.server) if args.server else None
    except ServerAddressError as error:
        print(f"hodei bench: {error}", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else Sizes()
    clients, skipped = all_clients(found)
    for name, why in skipped.items():
        print(f"hodei bench: skipping {name}: {why}", file=sys.stderr)
    try:
        server = None if user_target else EmbeddedServerProcess()
    except ServerStartError as error:
        print(f"hodei bench: {error}", file=sys.stderr)
        return 4
    target = user_target or (server.target if server is not None else "")  # one of the two is set
    plan = Plan(sizes, target, user_target is not None, found, clients, skipped)
    rows: list[Row] = []
    try:
        for name in args.only or list(SCENARIOS):
            began = time.monotonic()
            print(f"hodei bench: {name}…", file=sys.stderr, flush=True)
            rows += SCENARIOS[name](plan)
            print(f"hodei bench: {name} took {time.monotonic() - began:.0f}s", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("hodei bench: interrupted; the results so far follow", file=sys.stderr)
    finally:
        if server is not None:
            server.close()
    print(table(rows))
    print("clients: " + "; ".join(f"{name}: {DESCRIPTIONS[name]}" for name in clients))
    write_json(args.json, rows, {"sizes": asdict(sizes), "server": args.server or "embedded", "skipped": skipped})
    print(f"hodei bench: results in {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
