"""Data pipeline job payload: one stage of ingest → transform → validate → load → report.

Shipped to a worker as the body of a job (see ``hodei_stream.jobs.payload``), with the ETL
and analytics payloads in its bundle (``$HODEI_BUNDLE_DIR``): it reuses their generator,
cleaning rules, loader and queries, and adds what a pipeline needs between stages, files in
one work folder that the next stage checks before it trusts them.

    python3 -u data_pipeline.py STAGE --work-dir DIR [--records N] [--seed S]
                                [--corrupt-rate P] [--max-reject-rate P]

- ingest: remove what an earlier run left in DIR, then generate N raw customer records into
  DIR/raw/customers.csv (+ manifest with its sha256); --corrupt-rate P breaks the e-mail of
  that share of them, as a bad source would;
- transform: clean them with the ETL's rules into DIR/staged/customers.jsonl, count rejects;
- validate: row counts reconcile, ids unique, values in range, reject rate ≤ --max-reject-rate;
  fails with the reason otherwise;
- load: the staged rows into SQLite (DIR/customers.db), row count checked;
- report: the analytics queries, printed and written to DIR/report.txt.
Exit status 0 on success, 1 when the stage fails (the reason on stderr), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import random
import shutil
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, os.environ.get("HODEI_BUNDLE_DIR", ""))  # the ETL and analytics payloads
import analytics
import etl

RAW_FIELDS = ("customer_id", "name", "email", "country", "signup_date", "orders", "revenue")


class StageFailed(Exception):
    """The stage cannot go on; the message is the one line the user reads."""


def say(message: str) -> None:
    print(message, flush=True)


def read_json(path: Path, stage: str) -> dict[str, Any]:
    """A stage's JSON output (written by an earlier stage of this payload: trusted shape)."""
    if not path.exists():
        raise StageFailed(f"{path} is missing: run the {stage} stage first")
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# What the stages write in the work folder: ingest removes an earlier run's before it starts,
# so that no later stage (nor the summary) can take an earlier run's output for this one's.
STAGE_OUTPUTS = ("raw", "staged", "validation.json", etl.DATABASE_NAME, "report.txt")


def clear_earlier_run(work: Path) -> None:
    for name in STAGE_OUTPUTS:
        path = work / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def ingest(work: Path, records: int, seed: int, corrupt_rate: float) -> None:
    clear_earlier_run(work)
    rng = random.Random(seed)
    raw = work / "raw" / "customers.csv"
    raw.parent.mkdir(parents=True, exist_ok=True)
    corrupted = 0
    with raw.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, RAW_FIELDS)
        writer.writeheader()
        for count, record in enumerate(etl.generate(records, rng), start=1):
            if rng.random() < corrupt_rate:
                record["email"] = record["email"].replace("@", "#")
                corrupted += 1
            writer.writerow(record)
            if count % max(1, records // 5) == 0:
                say(f"      ingested {count:>7,} / {records:,}")
    digest = sha256_of(raw)
    manifest = {"records": records, "seed": seed, "corrupted": corrupted, "sha256": digest}
    (work / "raw" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    say(f"      ✔ {records:,} raw records in {raw} ({raw.stat().st_size:,} bytes, sha256 {digest[:12]})")
    if corrupted:
        say(f"      ⚠ --corrupt-rate {corrupt_rate}: {corrupted:,} records have a broken e-mail")


def transform(work: Path) -> None:
    manifest = read_json(work / "raw" / "manifest.json", "ingest")
    raw = work / "raw" / "customers.csv"
    if sha256_of(raw) != manifest["sha256"]:
        raise StageFailed(f"{raw} changed since ingest (sha256 differs from the manifest)")
    staged = work / "staged" / "customers.jsonl"
    staged.parent.mkdir(parents=True, exist_ok=True)
    rejected: Counter[str] = Counter()
    seen_ids: set[int] = set()
    kept = 0
    with raw.open(newline="", encoding="utf-8") as source, staged.open("w", encoding="utf-8") as target:
        for record in csv.DictReader(source):
            row, reason = etl.transform(record, seen_ids)
            if row is None:
                rejected[reason or "unknown"] += 1
                continue
            target.write(json.dumps(row) + "\n")
            kept += 1
    for reason, count in sorted(rejected.items()):
        say(f"      rejected {count:>6,}: {reason}")
    summary = {"read": manifest["records"], "kept": kept, "rejected": dict(rejected)}
    (work / "staged" / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    say(f"      ✔ {kept:,} rows staged in {staged}, {sum(rejected.values()):,} rejected")


def validate(work: Path, max_reject_rate: float) -> None:
    summary = read_json(work / "staged" / "summary.json", "transform")
    read, kept, rejected = int(summary["read"]), int(summary["kept"]), dict(summary["rejected"])
    problems: list[str] = []
    if kept + sum(rejected.values()) != read:
        problems.append(f"{read:,} records read but {kept:,} kept + {sum(rejected.values()):,} rejected")
    ids: set[int] = set()
    rows = 0
    with (work / "staged" / "customers.jsonl").open(encoding="utf-8") as staged:
        for row in map(json.loads, staged):
            rows += 1
            customer_id, email, country, orders, revenue = row[0], row[2], row[4], row[7], row[8]
            if customer_id in ids:
                problems.append(f"customer id {customer_id} appears twice")
            ids.add(customer_id)
            if not etl.EMAIL_PATTERN.match(email) or len(country) != 2 or orders < 0 or revenue < 0:
                problems.append(f"customer {customer_id} has out-of-range values")
    if rows != kept:
        problems.append(f"the staged file holds {rows:,} rows, the transform reported {kept:,}")
    reject_rate = sum(rejected.values()) / read if read else 0.0
    say(f"      reject rate {reject_rate:.1%} (limit {max_reject_rate:.1%}); {rows:,} staged rows checked")
    if reject_rate > max_reject_rate:
        worst = ", ".join(f"{reason} {count:,}" for reason, count in Counter(rejected).most_common(3))
        problems.append(
            f"{reject_rate:.1%} of the records were rejected, above the {max_reject_rate:.1%} limit ({worst})"
        )
    report = {"rows": rows, "reject_rate": reject_rate, "passed": not problems, "problems": problems[:20]}
    (work / "validation.json").write_text(json.dumps(report), encoding="utf-8")
    if problems:
        raise StageFailed(f"{problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    say("      ✔ counts reconcile, ids unique, values in range")


def load(work: Path, seed: int) -> None:
    validation = read_json(work / "validation.json", "validate")
    if not validation["passed"]:
        raise StageFailed("the staged data did not pass validation: not loading it")
    summary = read_json(work / "staged" / "summary.json", "transform")
    with (work / "staged" / "customers.jsonl").open(encoding="utf-8") as staged:
        rows = [tuple(json.loads(line)) for line in staged]
    loaded = etl.load(rows, Counter(summary["rejected"]), int(summary["read"]), seed, work / etl.DATABASE_NAME)
    if loaded != len(rows):
        raise StageFailed(f"the database holds {loaded:,} rows, expected {len(rows):,}")
    say(f"      ✔ loaded {loaded:,} rows into {work / etl.DATABASE_NAME}")


class Tee:
    """Writes to several text streams: the report goes to the log and to report.txt alike."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def report(work: Path) -> None:
    database = work / etl.DATABASE_NAME
    if not database.exists():
        raise StageFailed(f"{database} is missing: run the load stage first")
    path = work / "report.txt"
    with path.open("w", encoding="utf-8") as file, contextlib.redirect_stdout(Tee(sys.stdout, file)):
        analytics.run(database, top=5)
    say(f"      ✔ report written to {path}")


def share(text: str) -> float:
    """A share in [0, 1]; nan would make every comparison false and switch validation off."""
    value = float(text)
    if not 0.0 <= value <= 1.0:  # also False for nan
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, not {text}")
    return value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="data_pipeline", description="One stage of the data pipeline.")
    parser.add_argument("stage", choices=("ingest", "transform", "validate", "load", "report"))
    parser.add_argument("--work-dir", type=Path, required=True, help="the folder the stages share")
    parser.add_argument("--records", type=int, default=50_000, help="ingest: how many records")
    parser.add_argument("--seed", type=int, default=42, help="ingest/load: the random seed")
    parser.add_argument("--corrupt-rate", type=share, default=0.0, help="ingest: share of records to corrupt (0-1)")
    parser.add_argument(
        "--max-reject-rate", type=share, default=0.05, help="validate: highest acceptable reject rate (0-1)"
    )
    args = parser.parse_args(argv)
    args.work_dir = args.work_dir.absolute()  # the log names the folder where it is on the worker
    started = time.monotonic()
    say(f"[{args.stage}] work folder {args.work_dir}")
    try:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        if args.stage == "ingest":
            ingest(args.work_dir, args.records, args.seed, args.corrupt_rate)
        elif args.stage == "transform":
            transform(args.work_dir)
        elif args.stage == "validate":
            validate(args.work_dir, args.max_reject_rate)
        elif args.stage == "load":
            load(args.work_dir, args.seed)
        else:
            report(args.work_dir)
    except (StageFailed, OSError, sqlite3.Error, ValueError) as error:
        print(f"❌ {args.stage} failed: {error}", file=sys.stderr, flush=True)
        return 1
    say(f"✅ {args.stage} completed in {time.monotonic() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
