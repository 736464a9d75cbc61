"""Analytics job payload: real queries on the customers database the ETL job loaded.

Shipped to a worker as the body of a job (see ``hodei_stream.jobs.payload``): Python's
standard library only, run with ``python3 -u``.  Prints each result table as soon as its
query is done.

    python3 -u analytics.py [--work-dir DIR] [--top N]

The database is ``DIR/customers.db`` (``DIR`` defaults to ``$ETL_WORK_DIR``, as for the ETL
job).  Exit status 0 on success, 1 when the database is missing or unreadable.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# The ETL payload's names, repeated: a payload runs alone on the worker and cannot import it.
DATABASE_NAME = "customers.db"
WORK_DIR_ENV = "ETL_WORK_DIR"
RECENT_COHORTS = 12  # the most recent signup months shown in the cohort table

QUERIES: list[tuple[str, str, Sequence[str]]] = [
    (
        "Revenue by country",
        """SELECT country, COUNT(*), ROUND(SUM(revenue), 2), ROUND(AVG(revenue), 2),
                  100.0 * SUM(revenue) / (SELECT SUM(revenue) FROM customers)
           FROM customers GROUP BY country ORDER BY SUM(revenue) DESC""",
        ("country", "customers", "revenue", "avg/customer", "share %"),
    ),
    (
        "Top {top} customers by revenue",
        """SELECT printf('#%d', customer_id), name, country, orders, revenue, tier
           FROM customers ORDER BY revenue DESC, customer_id LIMIT :top""",
        ("id", "name", "country", "orders", "revenue", "tier"),
    ),
    (
        "Monthly signup cohorts (latest {recent})",
        """SELECT signup_month, COUNT(*), ROUND(AVG(orders), 2), ROUND(AVG(revenue), 2),
                  100.0 * SUM(tier IN ('gold', 'platinum')) / COUNT(*)
           FROM customers GROUP BY signup_month ORDER BY signup_month DESC LIMIT :recent""",
        ("cohort", "customers", "avg orders", "avg revenue", "gold+ %"),
    ),
    (
        "Customers by tier",
        """SELECT tier, COUNT(*), ROUND(SUM(revenue), 2), ROUND(AVG(revenue_per_order), 2)
           FROM customers GROUP BY tier ORDER BY MIN(revenue) DESC""",
        ("tier", "customers", "revenue", "avg revenue/order"),
    ),
]


def say(message: str) -> None:
    print(message, flush=True)


def cell_text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(headers: Sequence[str], rows: list[tuple[object, ...]]) -> list[str]:
    """Rows as aligned text: numbers right-aligned with thousands separators, text left."""
    cells = [[cell_text(value) for value in row] for row in rows]
    widths = [max([len(header), *(len(row[column]) for row in cells)]) for column, header in enumerate(headers)]
    numeric = [bool(rows) and isinstance(rows[0][column], (int, float)) for column in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(values, widths, numeric, strict=False)
        ).rstrip()

    return [line(headers), line(["-" * width for width in widths]), *(line(row) for row in cells)]


def run(database: Path, top: int) -> None:
    started = time.monotonic()
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        (customers,) = connection.execute("SELECT COUNT(*) FROM customers").fetchone()
        say(f"📊 Analytics on {customers:,} customers in {database}")
        parameters = {"top": top, "recent": RECENT_COHORTS}
        for number, (title, sql, headers) in enumerate(QUERIES, start=1):
            query_started = time.monotonic()
            rows = connection.execute(sql, parameters).fetchall()
            say(f"[{number}/{len(QUERIES)}] {title.format(**parameters)} ({time.monotonic() - query_started:.3f}s)")
            for text in table(headers, rows):
                say(f"      {text}")
    finally:
        connection.close()
    say(f"✅ Analytics completed in {time.monotonic() - started:.2f}s")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="analytics", description="Query the customers database.")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=os.environ.get(WORK_DIR_ENV),
        help="folder holding customers.db (default: $ETL_WORK_DIR)",
    )
    parser.add_argument("--top", type=int, default=10, help="how many top customers to list")
    args = parser.parse_args(argv)
    if args.work_dir is None:
        parser.error("no work folder: pass --work-dir or set ETL_WORK_DIR")
    database = args.work_dir.absolute() / DATABASE_NAME  # named where it is on the worker
    if not database.exists():
        print(f"❌ no customers database at {database}: run the ETL job first (--etl)", file=sys.stderr, flush=True)
        return 1
    try:
        run(database, args.top)
    except sqlite3.Error as error:
        print(f"❌ analytics failed on {database}: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
