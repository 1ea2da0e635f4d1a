"""Fill a store with many subscribers quickly, straight through SQL.

`newsletter subscribers import` checks every row (a few thousand rows/s): fine for real lists,
far too slow to set up a million. This migrates the store with `Store.open`, then bulk
inserts `subscribers` and `list_members` (PostgreSQL: COPY; SQLite: executemany in one
transaction), and optionally one campaign with a pending delivery per person (for the
unsubscribe benchmark: a token names a campaign, and the page links the unsubscribe to its
delivery). Run as a child of the bench (`fill`) so that its memory and CPU stay out of it:

    python -m bench.harness.bulk STORE_URL COUNT [--list main] [--campaign SLUG] [--tokens FILE --tokens-count N]

The people are the same as bench/harness/project.py's (every other one Arabic, addresses
person000000@example.net …), with a random unique 32-hex token_key each. `--tokens FILE`
writes the signed unsubscribe tokens (NEWSLETTER_SECRET_KEY; campaign: the one made with
--campaign, else 0) of N people, one a line, in a random order. Prints one JSON line:
{"count", "fill_s", "migrate_s", "campaign_id"}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import secrets
import time
from pathlib import Path

from bench.harness.children import run_json


def fill(url: str, count: int, env: dict[str, str], *extra: str) -> dict:
    """The store at `url` migrated and filled in a child process; what it printed."""
    return run_json("bench.harness.bulk", url, str(count), *extra, env=env)


def person(n: int) -> tuple[str, str, str]:
    language = "ar" if n % 2 == 0 else "en"
    domain = "example.org" if n % 3 else "example.net"
    name = f"مشارك {n}" if language == "ar" else f"Participant {n}"
    return f"person{n:07d}@{domain}", name, language


def _pg_conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    parts = {"host": u.host, "port": u.port, "user": u.username, "dbname": u.database, "password": u.password}
    return " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)


def fill_postgres(url: str, count: int, list_name: str, campaign: str | None) -> tuple[int | None, list[str]]:
    import psycopg

    now = dt.datetime.now(dt.UTC)
    keys: list[str] = []
    with psycopg.connect(_pg_conninfo(url)) as conn:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO lists (name, created_at) VALUES (%s, %s) RETURNING id", (list_name, now))
            list_id = cur.fetchone()[0]
            with cur.copy(
                "COPY subscribers (email, email_key, name, language, status, token_key, created_at, updated_at) FROM STDIN"
            ) as copy:
                for n in range(count):
                    address, name, language = person(n)
                    key = secrets.token_hex(16)
                    keys.append(key)
                    copy.write_row((address, address.lower(), name, language, "active", key, now, now))
            cur.execute(
                "INSERT INTO list_members (list_id, subscriber_id, added_at) SELECT %s, id, %s FROM subscribers", (list_id, now)
            )
            campaign_id = None
            if campaign:
                campaign_id = _campaign(cur, campaign, list_id, now, "%s")
            cur.execute("ANALYZE")
    return campaign_id, keys


def _campaign(cur, slug: str, list_id: int, now, mark: str) -> int:
    cur.execute(
        f"INSERT INTO campaigns (slug, list_id, content_hash, layout, provider, state, created_at) "
        f"VALUES ({mark}, {mark}, {mark}, 'bilingual', 'ses', 'done', {mark})",
        (slug, list_id, "0" * 64, now),
    )
    cur.execute(f"SELECT id FROM campaigns WHERE slug = {mark}", (slug,))
    campaign_id = cur.fetchone()[0]
    cur.execute(
        f"INSERT INTO deliveries (campaign_id, subscriber_id, variant, language, state, attempts, updated_at) "
        f"SELECT {mark}, id, 'bilingual', language, 'sent', 1, {mark} FROM subscribers",
        (campaign_id, now),
    )
    return campaign_id


def fill_sqlite(url: str, count: int, list_name: str, campaign: str | None) -> tuple[int | None, list[str]]:
    import sqlite3

    path = url.split("sqlite:///", 1)[1]
    # SQLAlchemy's own text form of a DateTime on SQLite
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    keys: list[str] = []
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        cur = conn.cursor()
        cur.execute("INSERT INTO lists (name, created_at) VALUES (?, ?)", (list_name, now))
        list_id = cur.lastrowid

        def rows():
            for n in range(count):
                address, name, language = person(n)
                key = secrets.token_hex(16)
                keys.append(key)
                yield address, address.lower(), name, language, "active", key, now, now

        cur.executemany(
            "INSERT INTO subscribers (email, email_key, name, language, status, token_key, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
        cur.execute("INSERT INTO list_members (list_id, subscriber_id, added_at) SELECT ?, id, ? FROM subscribers", (list_id, now))
        campaign_id = _campaign(cur, campaign, list_id, now, "?") if campaign else None
        conn.commit()
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return campaign_id, keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    parser.add_argument("--list", default="main")
    parser.add_argument("--campaign", default=None, help="also make a finished campaign of this slug, one delivery each")
    parser.add_argument("--tokens", type=Path, default=None)
    parser.add_argument("--tokens-count", type=int, default=0)
    args = parser.parse_args()

    from newsletter.store import Store

    start = time.perf_counter()
    store = Store.open(args.url)  # creates the tables (Alembic), as any command would
    store.close()
    migrate_s = time.perf_counter() - start
    start = time.perf_counter()
    fill = fill_postgres if args.url.startswith("postgresql") else fill_sqlite
    campaign_id, keys = fill(args.url, args.count, args.list, args.campaign)
    fill_s = time.perf_counter() - start
    if args.tokens:
        from newsletter.keys import secret_key
        from newsletter.keys import TokenSigner

        signer = TokenSigner(secret_key())
        chosen = random.Random(1).sample(keys, min(args.tokens_count or len(keys), len(keys)))
        args.tokens.write_text("".join(signer.make(k, campaign_id or 0) + "\n" for k in chosen), encoding="ascii")
    print(json.dumps({"count": args.count, "fill_s": fill_s, "migrate_s": migrate_s, "campaign_id": campaign_id}))


if __name__ == "__main__":
    main()
