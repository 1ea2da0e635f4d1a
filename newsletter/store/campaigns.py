"""Campaigns: one issue sent to the union of some lists, as a rehearsal (the outbox) or for
real. Created with its recipients frozen into the ledger; newcomers to its lists added later
on request; its state written only through `Campaigns.set_state`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import and_, exists, func, insert, select, update
from sqlalchemy.engine import Connection

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.audience.selection import Standing, decide
from newsletter.domain import Campaign
from newsletter.keys import email_hash
from newsletter.store.database import Repository, suppressed_hashes

PAGE = 5000  # members read at a time: memory stays flat however long the lists are
# deliveries written by one INSERT of many rows (one statement, where an executemany is one
# per row); 7 values a row stay under SQLite's 32,766 parameters
ROWS_PER_INSERT = 1000


@dataclass
class Recipients:
    """Who a campaign adds, and who it leaves out and why (reason → count)."""

    added: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


@dataclass(frozen=True)
class Candidate:
    """A member of a campaign's lists, and why they are left out (None: they get it)."""

    id: int
    language: str
    email: str
    name: str
    token_key: str
    reason: str | None


def _columns() -> tuple[Any, ...]:
    c = t.campaigns.c
    return (
        c.id,
        c.slug,
        c.list_id,
        c.content_hash,
        c.layout,
        c.provider,
        c.state,
        c.stop_reason,
        c.created_at,
        c.finished_at,
        c.rehearsal,
    )


class Campaigns(Repository):
    """Campaigns and who they go to: their recipients frozen into the ledger at creation,
    newcomers to their lists added on request; their state written only through `set_state`."""

    def _campaigns(self, conn: Connection, *conditions: Any) -> list[Campaign]:
        rows = conn.execute(select(*_columns()).where(*conditions).order_by(t.campaigns.c.id)).all()
        if not rows:
            return []
        names: dict[int, list[str]] = {}
        for campaign_id, name in conn.execute(
            select(t.campaign_lists.c.campaign_id, t.lists.c.name)
            .select_from(t.campaign_lists.join(t.lists))
            .where(t.campaign_lists.c.campaign_id.in_([row[0] for row in rows]))
            .order_by(t.lists.c.name)
        ):
            names.setdefault(campaign_id, []).append(name)
        return [replace(Campaign(*row), rehearsal=bool(row[10]), lists=tuple(names.get(row[0], ()))) for row in rows]

    def get(self, campaign_id: int) -> Campaign | None:
        with self.db.read() as conn:
            found = self._campaigns(conn, t.campaigns.c.id == campaign_id)
        return found[0] if found else None

    def all(self) -> list[Campaign]:
        with self.db.read() as conn:
            return self._campaigns(conn)

    def find(self, reference: str) -> list[Campaign]:
        """The campaigns a user means by `reference`: a campaign number or an issue slug."""
        c = t.campaigns.c
        condition = c.slug == reference
        if reference.isascii() and reference.isdigit() and len(reference) < 19 and str(int(reference)) == reference:
            condition = condition | (c.id == int(reference))
        with self.db.read() as conn:
            return self._campaigns(conn, condition)

    def lists(self) -> list[tuple[str, int]]:
        """(name, how many members) of every list: what a campaign can go to."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.lists.c.name, func.count(t.list_members.c.subscriber_id))
                .select_from(t.lists.outerjoin(t.list_members))
                .group_by(t.lists.c.name)
                .order_by(t.lists.c.name)
            )
            return [(name, count) for name, count in rows]

    def open_for(self, slug: str, lists: Sequence[str], *, rehearsal: bool) -> Campaign | None:
        """The open campaign of this issue to exactly these lists, rehearsal or real, if any."""
        wanted = tuple(sorted(set(lists)))
        with self.db.read() as conn:
            found = self._campaigns(
                conn,
                t.campaigns.c.slug == slug,
                t.campaigns.c.rehearsal == rehearsal,
                t.campaigns.c.state != d.CAMPAIGN_CANCELLED,
            )
        matching = [c for c in found if c.lists == wanted]
        return matching[-1] if matching else None

    def create(
        self,
        *,
        slug: str,
        lists: Sequence[str],
        content_hash: str,
        layout: str,
        provider: str,
        variant_for: Callable[[str], str],
        secret: bytes,
        rehearsal: bool = False,
        again: bool = False,
    ) -> tuple[Campaign, Recipients]:
        """Create the campaign and freeze its recipients into the ledger, in one transaction."""
        now = self.db.now()
        with self.db.write() as conn:
            list_ids = self._list_ids(conn, lists)
            campaign_id = conn.execute(
                insert(t.campaigns)
                .values(
                    slug=slug,
                    list_id=list_ids[0],
                    content_hash=content_hash,
                    layout=layout,
                    provider=provider,
                    state=d.CAMPAIGN_SENDING,
                    created_at=now,
                    rehearsal=rehearsal,
                )
                .returning(t.campaigns.c.id)
            ).scalar_one()
            conn.execute(insert(t.campaign_lists), [{"campaign_id": campaign_id, "list_id": i} for i in list_ids])
            campaign = self._campaigns(conn, t.campaigns.c.id == campaign_id)[0]
            added = self._add_recipients(conn, campaign, variant_for, secret, again=again)
        return campaign, added

    def add_newcomers(
        self, campaign: Campaign, *, variant_for: Callable[[str], str], secret: bytes, again: bool = False
    ) -> Recipients:
        """Put on the ledger the members of the campaign's lists who have no delivery in it yet
        (they joined after it started) and have not had the issue elsewhere."""
        with self.db.write() as conn:
            return self._add_recipients(conn, campaign, variant_for, secret, again=again)

    def newcomers(
        self,
        campaign: Campaign | None,
        slug: str,
        lists: Sequence[str],
        *,
        rehearsal: bool,
        secret: bytes,
        again: bool = False,
    ) -> Iterator[Candidate]:
        """Who `create` (campaign None) or `add_newcomers` would consider, and why not."""
        with self.db.read() as conn:
            list_ids = self._list_ids(conn, lists)
            yield from self._candidates(
                conn, campaign.id if campaign else None, slug, list_ids, rehearsal, secret, again
            )

    def count_newcomers(
        self,
        campaign: Campaign | None,
        slug: str,
        lists: Sequence[str],
        *,
        rehearsal: bool,
        secret: bytes,
        again: bool = False,
    ) -> Recipients:
        """What `create` or `add_newcomers` would add, without writing anything."""
        result = Recipients()
        with self.db.read() as conn:
            list_ids = self._list_ids(conn, lists)
            for candidate in self._candidates(
                conn, campaign.id if campaign else None, slug, list_ids, rehearsal, secret, again
            ):
                if candidate.reason is None:
                    result.added += 1
                else:
                    result.skip(candidate.reason)
        return result

    def _list_ids(self, conn: Connection, names: Iterable[str]) -> list[int]:
        by_name = dict(conn.execute(select(t.lists.c.name, t.lists.c.id).where(t.lists.c.name.in_(list(names)))).all())
        return [by_name[name] for name in sorted(set(names)) if name in by_name]

    def _add_recipients(
        self, conn: Connection, campaign: Campaign, variant_for: Callable[[str], str], secret: bytes, *, again: bool
    ) -> Recipients:
        result = Recipients()
        now = self.db.now()
        list_ids = self._list_ids(conn, campaign.lists)
        batch: list[dict] = []
        for candidate in self._candidates(
            conn, campaign.id, campaign.slug, list_ids, campaign.rehearsal, secret, again
        ):
            if candidate.reason is not None:
                result.skip(candidate.reason)
                continue
            batch.append(
                {
                    "campaign_id": campaign.id,
                    "subscriber_id": candidate.id,
                    "variant": variant_for(candidate.language),
                    "language": candidate.language,
                    "state": d.PENDING,
                    "attempts": 0,
                    "updated_at": now,
                }
            )
            if len(batch) >= ROWS_PER_INSERT:
                result.added += _insert_deliveries(conn, batch)
                batch = []
        if batch:
            result.added += _insert_deliveries(conn, batch)
        return result

    def _candidates(
        self,
        conn: Connection,
        campaign_id: int | None,
        slug: str,
        list_ids: list[int],
        rehearsal: bool,
        secret: bytes,
        again: bool,
    ) -> Iterator[Candidate]:
        """Each member of the lists, once, who has no delivery in this campaign yet, with the
        reason they are left out (None: they get it)."""
        s, dl, c = t.subscribers.c, t.deliveries.c, t.campaigns.c
        suppressed = suppressed_hashes(conn)
        member = exists().where(
            and_(t.list_members.c.subscriber_id == s.id, t.list_members.c.list_id.in_(list_ids or [-1]))
        )
        in_this = exists().where(and_(dl.campaign_id == (campaign_id or -1), dl.subscriber_id == s.id))
        # had this issue in another campaign of the same kind, or is about to in an open one
        elsewhere = (
            select(dl.subscriber_id)
            .select_from(t.deliveries.join(t.campaigns, c.id == dl.campaign_id))
            .where(
                dl.subscriber_id == s.id,
                c.slug == slug,
                c.rehearsal == rehearsal,
                c.id != (campaign_id or -1),
                (dl.state.in_(d.HAD_STATES)) | ((dl.state == d.PENDING) & (c.state != d.CAMPAIGN_CANCELLED)),
            )
            .exists()
        )
        last_id = 0
        while True:
            rows = conn.execute(
                select(s.id, s.email_key, s.language, s.status, elsewhere, s.email, s.name, s.token_key)
                .where(member, ~in_this, s.id > last_id)
                .order_by(s.id)
                .limit(PAGE)
            ).all()
            if not rows:
                return
            last_id = rows[-1][0]
            for subscriber_id, key, language, status, had, email, name, token_key in rows:
                standing = Standing(
                    status,
                    language,
                    suppressed=bool(suppressed) and email_hash(secret, key) in suppressed,
                    had_issue=bool(had),
                )
                reason = decide(standing, again=again).reason
                yield Candidate(subscriber_id, language, email, name, token_key, reason)

    def set_state(self, campaign_id: int, state: str, reason: str | None = None) -> bool:
        """Write a campaign's state (a cancelled campaign stays cancelled); True when it changed."""
        values: dict = {"state": state, "stop_reason": reason}
        if state in (d.CAMPAIGN_DONE, d.CAMPAIGN_CANCELLED):
            values["finished_at"] = self.db.now()
        elif state == d.CAMPAIGN_SENDING:
            values["finished_at"] = None
        with self.db.write() as conn:
            query = update(t.campaigns).where(t.campaigns.c.id == campaign_id)
            if state != d.CAMPAIGN_CANCELLED:
                query = query.where(t.campaigns.c.state != d.CAMPAIGN_CANCELLED)
            return conn.execute(query.values(**values)).rowcount > 0

    def cancel_pending(self, campaign_id: int) -> int:
        """Pending deliveries of a cancelled campaign: skipped, never sent."""
        with self.db.write() as conn:
            return conn.execute(
                update(t.deliveries)
                .where(and_(t.deliveries.c.campaign_id == campaign_id, t.deliveries.c.state == d.PENDING))
                .values(state=d.SKIPPED, last_error="the campaign was cancelled", updated_at=self.db.now())
            ).rowcount


def _insert_deliveries(conn: Connection, rows: list[dict]) -> int:
    """One INSERT of many rows, written for the driver: SQLAlchemy compiling (or only keying
    its cache on) a statement of 7,000 values cost more CPU than the rows it wrote."""
    columns = tuple(rows[0])
    processors = [t.deliveries.c[c].type.bind_processor(conn.dialect) for c in columns]
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    row = f"({', '.join([mark] * len(columns))})"
    sql = f"INSERT INTO {t.deliveries.name} ({', '.join(columns)}) VALUES {', '.join([row] * len(rows))}"
    conn.exec_driver_sql(
        sql, tuple(p(r[c]) if p else r[c] for r in rows for c, p in zip(columns, processors, strict=True))
    )
    return len(rows)
