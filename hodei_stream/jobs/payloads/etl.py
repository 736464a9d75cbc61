"""ETL job payload: generate customer records, clean them, load them into SQLite.

This file is shipped to a worker as the body of a job (see ``hodei_stream.jobs.payload``), so
it imports nothing but Python's standard library and prints as it works: run it with
``python3 -u`` so each line leaves the process at once.

    python3 -u etl.py [--records N] [--seed S] [--work-dir DIR]

The work folder defaults to ``$ETL_WORK_DIR``; the database is ``DIR/customers.db``, built
beside it and moved into place only when complete, so a reader never sees half a load.
Progress goes to stdout, errors to stderr; exit status 0 on success, 1 on failure, 2 on
bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import sqlite3
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

DATABASE_NAME = "customers.db"
WORK_DIR_ENV = "ETL_WORK_DIR"
PROGRESS_LINES = 10  # progress lines per step, whatever the number of records
INSERT_BATCH = 10_000

FIRST_NAMES = (
    "Ana",
    "Luis",
    "María",
    "Jon",
    "Aitor",
    "Lucía",
    "Pablo",
    "Elena",
    "Iker",
    "Sofía",
    "Chen",
    "Priya",
    "Olivia",
    "Liam",
    "Noah",
    "Emma",
    "Yuki",
    "Omar",
    "Fatima",
    "Lars",
)
LAST_NAMES = (
    "García",
    "Etxeberria",
    "Martínez",
    "López",
    "Smith",
    "Johnson",
    "Müller",
    "Rossi",
    "Dubois",
    "Tanaka",
    "Khan",
    "Silva",
    "Novak",
    "Jensen",
    "O'Brien",
    "Kowalski",
)
EMAIL_DOMAINS = ("example.com", "mail.test", "corp.example", "shop.test")
# How customers write their country in the source data → ISO 3166 alpha-2, as loaded.
COUNTRY_SPELLINGS = {
    "ES": ("ES", "es", "Spain", "ESP", " spain "),
    "FR": ("FR", "France", "fra", "france"),
    "DE": ("DE", "Germany", "DEU", "deutschland"),
    "GB": ("GB", "UK", "United Kingdom", "gbr"),
    "US": ("US", "USA", "United States", "us "),
    "IT": ("IT", "Italy", "ita"),
    "PT": ("PT", "Portugal", "prt"),
    "JP": ("JP", "Japan", "jpn"),
    "IN": ("IN", "India", "ind"),
    "BR": ("BR", "Brazil", "bra"),
}
COUNTRY_CODES = {
    spelling.strip().lower(): code for code, spellings in COUNTRY_SPELLINGS.items() for spelling in spellings
}
SIGNUP_FIRST_DAY = dt.date(2019, 1, 1)
SIGNUP_DAYS = (dt.date(2024, 12, 31) - SIGNUP_FIRST_DAY).days
EMAIL_PATTERN = re.compile(r"^[a-z0-9._'+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
# Lifetime revenue thresholds (in the data's currency) for the derived customer tier.
TIERS = ((2_500.0, "platinum"), (1_200.0, "gold"), (400.0, "silver"), (0.0, "bronze"))

# Defects planted in the source data, each with its share of rows: the transform step
# must find every one of them, and the counts it prints say so.
DEFECT_RATES = {
    "invalid_email": 0.012,
    "unknown_country": 0.008,
    "bad_signup_date": 0.006,
    "negative_orders": 0.005,
    "bad_revenue": 0.006,
    "duplicate_id": 0.004,
}

RawRecord = dict[str, str]


def say(message: str) -> None:
    print(message, flush=True)  # flush as well as -u: the script may be run without it


def generate(count: int, rng: random.Random) -> Iterator[RawRecord]:
    """Customer rows as a CRM export would give them: all text, untidy, some of them wrong."""
    for customer_id in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # Mailboxes are ASCII here: "María O'Brien" → "maria.obrien".
        local_part = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
        local_part = local_part.replace("'", "").lower()
        orders = max(0, int(rng.gauss(8, 6)))
        record: RawRecord = {
            "customer_id": str(customer_id),
            "name": f"{first} {last}",
            # Mixed case and stray blanks, as people type them: the transform normalises.
            "email": f"  {local_part}{customer_id}@{rng.choice(EMAIL_DOMAINS)} ".swapcase()
            if rng.random() < 0.3
            else f"{local_part}{customer_id}@{rng.choice(EMAIL_DOMAINS)}",
            "country": rng.choice(rng.choice(list(COUNTRY_SPELLINGS.values()))),
            "signup_date": (SIGNUP_FIRST_DAY + dt.timedelta(days=rng.randrange(SIGNUP_DAYS))).isoformat(),
            "orders": str(orders),
            "revenue": f"{sum(rng.uniform(5, 250) for _ in range(orders)):.2f}",
        }
        defect = pick_defect(rng)
        if defect == "invalid_email":
            record["email"] = record["email"].replace("@", " at ")
        elif defect == "unknown_country":
            record["country"] = rng.choice(("Atlantis", "??", "", "N/A"))
        elif defect == "bad_signup_date":
            record["signup_date"] = rng.choice(("2023-02-30", "31/12/2021", "", "yesterday"))
        elif defect == "negative_orders":
            record["orders"] = str(-rng.randint(1, 5))
        elif defect == "bad_revenue":
            record["revenue"] = rng.choice(("N/A", "-120.00", "", "1e999"))
        elif defect == "duplicate_id" and customer_id > 1:
            record["customer_id"] = str(rng.randrange(1, customer_id))
        yield record


def pick_defect(rng: random.Random) -> str | None:
    draw = rng.random()
    for defect, rate in DEFECT_RATES.items():
        if draw < rate:
            return defect
        draw -= rate
    return None


def transform(raw: RawRecord, seen_ids: set[int]) -> tuple[tuple[object, ...] | None, str | None]:
    """One cleaned row ready for the database, or ``None`` and the reason it was dropped."""
    email = raw["email"].strip().lower()
    if not EMAIL_PATTERN.match(email):
        return None, "invalid_email"
    country = COUNTRY_CODES.get(raw["country"].strip().lower())
    if country is None:
        return None, "unknown_country"
    try:
        signup = dt.date.fromisoformat(raw["signup_date"])
    except ValueError:
        return None, "bad_signup_date"
    orders = int(raw["orders"])
    if orders < 0:
        return None, "negative_orders"
    try:
        revenue = float(raw["revenue"])
    except ValueError:
        return None, "bad_revenue"
    if not 0 <= revenue < 1e9:
        return None, "bad_revenue"
    customer_id = int(raw["customer_id"])
    if customer_id in seen_ids:
        return None, "duplicate_id"
    seen_ids.add(customer_id)
    tier = next(name for threshold, name in TIERS if revenue >= threshold)
    return (
        customer_id,
        raw["name"],
        email,
        email.rpartition("@")[2],
        country,
        signup.isoformat(),
        signup.strftime("%Y-%m"),
        orders,
        round(revenue, 2),
        round(revenue / orders, 2) if orders else 0.0,
        tier,
    ), None


SCHEMA = """
CREATE TABLE customers (
    customer_id       INTEGER PRIMARY KEY,
    name              TEXT NOT NULL,
    email             TEXT NOT NULL,
    email_domain      TEXT NOT NULL,
    country           TEXT NOT NULL,
    signup_date       TEXT NOT NULL,
    signup_month      TEXT NOT NULL,
    orders            INTEGER NOT NULL,
    revenue           REAL NOT NULL,
    revenue_per_order REAL NOT NULL,
    tier              TEXT NOT NULL
);
CREATE TABLE rejected (reason TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE etl_run (
    generated INTEGER NOT NULL, loaded INTEGER NOT NULL, seed INTEGER NOT NULL,
    finished_at TEXT NOT NULL
);
"""


def load(rows: list[tuple[object, ...]], rejected: Counter[str], generated: int, seed: int, database: Path) -> int:
    """Write the rows into a fresh database beside ``database``, then move it into place."""
    building = database.with_name(database.name + ".building")
    building.unlink(missing_ok=True)
    connection = sqlite3.connect(building)
    try:
        connection.executescript(SCHEMA)
        placeholders = ", ".join("?" * len(rows[0])) if rows else ""
        for start in range(0, len(rows), INSERT_BATCH):
            batch = rows[start : start + INSERT_BATCH]
            with connection:  # one transaction per batch: fast, and progress is real
                connection.executemany(f"INSERT INTO customers VALUES ({placeholders})", batch)
            say(f"      inserted {start + len(batch):>7,} / {len(rows):,} rows")
        say("      creating indexes on country, signup_month, tier")
        with connection:
            connection.execute("CREATE INDEX customers_country ON customers (country)")
            connection.execute("CREATE INDEX customers_signup_month ON customers (signup_month)")
            connection.execute("CREATE INDEX customers_tier ON customers (tier)")
            connection.executemany("INSERT INTO rejected VALUES (?, ?)", sorted(rejected.items()))
            connection.execute(
                "INSERT INTO etl_run VALUES (?, ?, ?, ?)",
                (generated, len(rows), seed, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")),
            )
        (loaded,) = connection.execute("SELECT COUNT(*) FROM customers").fetchone()
    finally:
        connection.close()
    os.replace(building, database)
    return int(loaded)


def run(records: int, seed: int, work_dir: Path) -> None:
    started = time.monotonic()
    rng = random.Random(seed)
    progress_every = max(1, records // PROGRESS_LINES)
    say(f"🚀 ETL pipeline: {records:,} customer records (seed {seed}) → {work_dir / DATABASE_NAME}")

    say(f"[1/3] Generating {records:,} customer records...")
    raw_records: list[RawRecord] = []
    for raw in generate(records, rng):
        raw_records.append(raw)
        if len(raw_records) % progress_every == 0:
            say(f"      generated {len(raw_records):>7,} / {records:,}")
    say(f"      ✔ {len(raw_records):,} records generated in {time.monotonic() - started:.2f}s")

    step_started = time.monotonic()
    say("[2/3] Transforming: normalising emails and countries, deriving tiers, dropping invalid rows...")
    rows: list[tuple[object, ...]] = []
    rejected: Counter[str] = Counter()
    seen_ids: set[int] = set()
    for done, raw in enumerate(raw_records, start=1):
        row, reason = transform(raw, seen_ids)
        if row is None:
            rejected[reason or "unknown"] += 1
        else:
            rows.append(row)
        if done % progress_every == 0:
            say(f"      transformed {done:>7,} / {records:,} ({sum(rejected.values()):,} dropped so far)")
    for reason, count in sorted(rejected.items()):
        say(f"      dropped {count:>6,} rows: {reason}")
    say(
        f"      ✔ {len(rows):,} valid rows, {sum(rejected.values()):,} dropped"
        f" in {time.monotonic() - step_started:.2f}s"
    )

    step_started = time.monotonic()
    database = work_dir / DATABASE_NAME
    say(f"[3/3] Loading {len(rows):,} rows into SQLite in batches of {INSERT_BATCH:,}...")
    loaded = load(rows, rejected, records, seed, database)
    say(f"      ✔ loaded {loaded:,} rows into {database} in {time.monotonic() - step_started:.2f}s")
    if loaded != len(rows):
        raise RuntimeError(f"the database holds {loaded:,} rows, expected {len(rows):,}")
    say(f"✅ ETL pipeline completed in {time.monotonic() - started:.2f}s: {loaded:,} rows loaded")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="etl", description="Generate, clean and load customer records.")
    parser.add_argument("--records", type=int, default=100_000, help="how many records to generate")
    parser.add_argument("--seed", type=int, default=42, help="random seed: the same seed, the same data")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=os.environ.get(WORK_DIR_ENV),
        help="folder for the database (default: $ETL_WORK_DIR)",
    )
    args = parser.parse_args(argv)
    if args.work_dir is None:
        parser.error("no work folder: pass --work-dir or set ETL_WORK_DIR")
    if args.records < 1:
        parser.error("--records must be at least 1")
    try:
        work_dir = args.work_dir.absolute()  # the log names the folder where it is on the worker
        work_dir.mkdir(parents=True, exist_ok=True)
        run(args.records, args.seed, work_dir)
    except (OSError, sqlite3.Error, RuntimeError) as error:
        print(f"❌ ETL pipeline failed: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
