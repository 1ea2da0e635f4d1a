"""Campaigns and the ledger: one row per recipient and campaign, claimed before sending
and recorded after, so that a crash at any moment leaves each delivery pending, sent or
in flight (then uncertain). The senders table lets several processes share a campaign."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.audience.selection import skip_reason
from newsletter.domain import Campaign, Claimed
from newsletter.keys import email_hash
from newsletter.store.database import Database


def campaign_columns() -> tuple[Any, ...]:
    c = t.campaigns.c
    return (c.id, c.slug, c.list_id, c.content_hash, c.layout, c.provider, c.state, c.stop_reason, c.created_at)


class LedgerStore(Database):
    def find_campaign(self, slug: str, list_id: int) -> Campaign | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*campaign_columns()).where(and_(t.campaigns.c.slug == slug, t.campaigns.c.list_id == list_id))
            ).first()
            return Campaign(*row) if row else None

    def campaign(self, campaign_id: int) -> Campaign | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*campaign_columns()).where(t.campaigns.c.id == campaign_id)).first()
            return Campaign(*row) if row else None

    def find_campaigns(self, reference: str) -> list[Campaign]:
        """The campaigns a user means by `reference`: a campaign number or an issue slug."""
        return [c for c in self.campaigns() if str(c.id) == reference or c.slug == reference]

    def campaigns(self) -> list[Campaign]:
        with self.engine.connect() as conn:
            return [Campaign(*row) for row in conn.execute(select(*campaign_columns()).order_by(t.campaigns.c.id))]

    def create_campaign(
        self,
        *,
        slug: str,
        list_id: int,
        content_hash: str,
        layout: str,
        provider: str,
        variant_for: Callable[[str], str],
        secret: bytes,
    ) -> tuple[Campaign, dict[str, int]]:
        """Create the campaign and freeze its recipients into the ledger, in one transaction.

        Returns the campaign and the members left out, by reason.
        """
        now = self.now()
        skipped: dict[str, int] = {}
        with self.engine.begin() as conn:
            campaign_id = conn.execute(
                insert(t.campaigns)
                .values(
                    slug=slug,
                    list_id=list_id,
                    content_hash=content_hash,
                    layout=layout,
                    provider=provider,
                    state=d.CAMPAIGN_SENDING,
                    created_at=now,
                )
                .returning(t.campaigns.c.id)
            ).scalar_one()
            suppressed = {h for (h,) in conn.execute(select(t.suppressions.c.email_hash))}
            # page through the list by id: memory stays flat however long the list is
            last_id = 0
            batch: list[dict] = []
            while True:
                members = conn.execute(
                    select(
                        t.subscribers.c.id, t.subscribers.c.email_key, t.subscribers.c.language, t.subscribers.c.status
                    )
                    .select_from(
                        t.subscribers.join(t.list_members, t.list_members.c.subscriber_id == t.subscribers.c.id)
                    )
                    .where(and_(t.list_members.c.list_id == list_id, t.subscribers.c.id > last_id))
                    .order_by(t.subscribers.c.id)
                    .limit(5000)
                ).all()
                if not members:
                    break
                last_id = members[-1][0]
                for subscriber_id, key, language, status in members:
                    reason = skip_reason(status, bool(suppressed) and email_hash(secret, key) in suppressed)
                    if reason is not None:
                        skipped[reason] = skipped.get(reason, 0) + 1
                        continue
                    batch.append(
                        {
                            "campaign_id": campaign_id,
                            "subscriber_id": subscriber_id,
                            "variant": variant_for(language),
                            "language": language,
                            "state": d.PENDING,
                            "attempts": 0,
                            "updated_at": now,
                        }
                    )
                if batch:
                    conn.execute(insert(t.deliveries), batch)
                    batch = []
            if batch:
                conn.execute(insert(t.deliveries), batch)
        campaign = self.campaign(campaign_id)
        assert campaign is not None
        return campaign, skipped

    def set_campaign_state(self, campaign_id: int, state: str, reason: str | None = None) -> None:
        values: dict = {"state": state, "stop_reason": reason}
        if state == d.CAMPAIGN_DONE:
            values["finished_at"] = self.now()
        with self.engine.begin() as conn:
            conn.execute(update(t.campaigns).where(t.campaigns.c.id == campaign_id).values(**values))

    # --- senders: the processes at work on a campaign -----------------------------------------

    def register_sender(self, campaign_id: int, name: str) -> None:
        now = self.now()
        with self.engine.begin() as conn:
            conn.execute(insert(t.senders).values(campaign_id=campaign_id, name=name, started_at=now, heartbeat_at=now))

    def heartbeat(self, name: str, campaign_id: int, lease: float) -> int:
        """Renew this sender's lease; returns how many senders are alive on the campaign."""
        now = self.now()
        with self.engine.begin() as conn:
            conn.execute(update(t.senders).where(t.senders.c.name == name).values(heartbeat_at=now))
            return conn.execute(
                select(func.count()).where(
                    and_(
                        t.senders.c.campaign_id == campaign_id,
                        t.senders.c.stopped_at.is_(None),
                        t.senders.c.heartbeat_at >= now - dt.timedelta(seconds=lease),
                    )
                )
            ).scalar_one()

    def stop_sender(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.senders).where(t.senders.c.name == name).values(stopped_at=self.now()))

    def recover_in_flight(self, campaign_id: int, *, lease: float | None = None) -> int:
        """Deliveries left `sending` by a sender that is gone: they may or may not have gone
        out, so they become uncertain. With `lease`, senders whose heartbeat is fresher are
        alive and their deliveries are left alone; without it, every sender is taken as gone."""
        now = self.now()
        with self.engine.begin() as conn:
            query = update(t.deliveries).where(
                and_(t.deliveries.c.campaign_id == campaign_id, t.deliveries.c.state == d.SENDING)
            )
            if lease is not None:
                alive = select(t.senders.c.name).where(
                    and_(
                        t.senders.c.campaign_id == campaign_id,
                        t.senders.c.stopped_at.is_(None),
                        t.senders.c.heartbeat_at >= now - dt.timedelta(seconds=lease),
                    )
                )
                query = query.where(t.deliveries.c.claimed_by.not_in(alive))
            return conn.execute(
                query.values(state=d.UNCERTAIN, last_error="in flight when its sending process stopped", updated_at=now)
            ).rowcount

    def requeue(self, campaign_id: int, states: tuple[str, ...]) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                update(t.deliveries)
                .where(and_(t.deliveries.c.campaign_id == campaign_id, t.deliveries.c.state.in_(states)))
                .values(state=d.PENDING, updated_at=self.now())
            ).rowcount

    def claim(self, campaign_id: int, limit: int, worker: str) -> list[Claimed]:
        """Mark up to `limit` pending deliveries `sending` and return them, in one transaction."""
        return self.record_and_claim(campaign_id, worker, limit, sent=[])

    def record_results(self, sent, *, failed=(), uncertain=(), released=()) -> None:
        """Write what the provider said (see record_and_claim), claiming nothing."""
        self.record_and_claim(None, "", 0, sent=sent, failed=failed, uncertain=uncertain, released=released)

    def record_and_claim(
        self,
        campaign_id: int | None,
        worker: str,
        limit: int,
        *,
        sent: Sequence[tuple[int, str]],
        failed: Sequence[tuple[int, str]] = (),
        uncertain: Sequence[tuple[int, str]] = (),
        released: Sequence[int] = (),
    ) -> list[Claimed]:
        """Record results and claim the next deliveries, in one transaction (one commit).

        `sent`: (delivery id, provider message id); `failed`/`uncertain`: (id, error);
        `released`: claimed but never handed to the provider, back to pending. Then up to
        `limit` pending deliveries become `sending`, claimed by `worker`. On PostgreSQL the
        claim skips rows other senders hold (FOR UPDATE SKIP LOCKED). Deliveries whose person
        is gone or no longer active are marked skipped instead of claimed.
        """
        now = self.now()
        with self.engine.begin() as conn:
            self._record(conn, now, sent, failed, uncertain, released)
            if campaign_id is None or limit <= 0:
                return []
            return self._claim(conn, now, campaign_id, limit, worker)

    def _record(self, conn: Connection, now, sent, failed, uncertain, released) -> None:
        if sent:
            conn.execute(
                update(t.deliveries)
                .where(t.deliveries.c.id == bindparam("delivery_id"))
                .values(
                    state=d.SENT,
                    provider_message_id=bindparam("message_id"),
                    sent_at=now,
                    updated_at=now,
                    last_error=None,
                ),
                [{"delivery_id": d, "message_id": m} for d, m in sent],
            )
        for state, items in ((d.FAILED, failed), (d.UNCERTAIN, uncertain)):
            if items:
                conn.execute(
                    update(t.deliveries)
                    .where(t.deliveries.c.id == bindparam("delivery_id"))
                    .values(state=state, last_error=bindparam("error"), updated_at=now),
                    [{"delivery_id": d, "error": e[:2000]} for d, e in items],
                )
        if released:
            conn.execute(
                update(t.deliveries)
                .where(and_(t.deliveries.c.id.in_(list(released)), t.deliveries.c.state == d.SENDING))
                .values(state=d.PENDING, attempts=t.deliveries.c.attempts - 1, updated_at=now)
            )

    def _claim(self, conn: Connection, now, campaign_id: int, limit: int, worker: str) -> list[Claimed]:
        pending = (
            select(t.deliveries.c.id)
            .where(and_(t.deliveries.c.campaign_id == campaign_id, t.deliveries.c.state == d.PENDING))
            .order_by(t.deliveries.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            pending = pending.with_for_update(skip_locked=True)
        candidates = [row[0] for row in conn.execute(pending)]
        if not candidates:
            return []
        # The state guard makes the claim safe on SQLite too, where the SELECT above takes no
        # lock: a concurrent claimer that got there first leaves those rows out of RETURNING.
        ids = [
            row[0]
            for row in conn.execute(
                update(t.deliveries)
                .where(and_(t.deliveries.c.id.in_(candidates), t.deliveries.c.state == d.PENDING))
                .values(
                    state=d.SENDING,
                    claimed_by=worker,
                    claimed_at=now,
                    attempts=t.deliveries.c.attempts + 1,
                    updated_at=now,
                )
                .returning(t.deliveries.c.id)
            )
        ]
        if not ids:
            return []
        rows = conn.execute(
            select(
                t.deliveries.c.id,
                t.deliveries.c.variant,
                t.deliveries.c.language,
                t.subscribers.c.email,
                t.subscribers.c.name,
                t.subscribers.c.token_key,
                t.subscribers.c.status,
            )
            .select_from(t.deliveries.outerjoin(t.subscribers, t.deliveries.c.subscriber_id == t.subscribers.c.id))
            .where(t.deliveries.c.id.in_(ids))
            .order_by(t.deliveries.c.id)
        ).all()
        claimed: list[Claimed] = []
        gone: list[dict] = []
        for delivery_id, variant, language, address, name, token_key, status in rows:
            if address is None:
                gone.append({"delivery_id": delivery_id, "error": "the person was forgotten"})
            elif status != d.ACTIVE:
                gone.append({"delivery_id": delivery_id, "error": f"the person is {status}"})
            else:
                claimed.append(Claimed(delivery_id, variant, language, address, name or "", token_key))
        if gone:
            conn.execute(
                update(t.deliveries)
                .where(t.deliveries.c.id == bindparam("delivery_id"))
                .values(
                    state=d.SKIPPED, last_error=bindparam("error"), attempts=t.deliveries.c.attempts - 1, updated_at=now
                ),
                gone,
            )
        return claimed

    def delivery_counts(self, campaign_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.deliveries.c.state, func.count())
                .where(t.deliveries.c.campaign_id == campaign_id)
                .group_by(t.deliveries.c.state)
            )
            counts = dict.fromkeys(d.DELIVERY_STATES, 0)
            counts.update({state: n for state, n in rows})  # noqa: C416 - a result with keys() is no mapping of rows
            return counts

    def deliveries_in(self, campaign_id: int, state: str) -> list[tuple[int, str | None, str | None]]:
        """(delivery id, address or None when forgotten, last error) for one state."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.deliveries.c.id, t.subscribers.c.email, t.deliveries.c.last_error)
                .select_from(t.deliveries.outerjoin(t.subscribers, t.deliveries.c.subscriber_id == t.subscribers.c.id))
                .where(and_(t.deliveries.c.campaign_id == campaign_id, t.deliveries.c.state == state))
                .order_by(t.deliveries.c.id)
            )
            return [tuple(row) for row in rows]
