"""The only module that touches the database: subscribers, lists, campaigns, the ledger.

SQLite by default (a file beside newsletter.toml), PostgreSQL by URL. The schema is kept
current with Alembic on open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
import threading
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import and_, bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from newsletter import schema as s
from newsletter.errors import NewsletterError
from newsletter.secrets import email_hash

MIGRATIONS = Path(__file__).with_name("migrations")
Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class StoreError(NewsletterError):
    """The database could not do what was asked."""


@dataclass(frozen=True)
class NewSubscriber:
    email: str  # normalised
    name: str
    language: str
    line: int | None = None


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    kept_status: int = 0  # known, not active: stays as it is
    suppressed: int = 0  # forgotten or suppressed before: not added back

    def total(self) -> int:
        return self.added + self.updated + self.kept_status + self.suppressed


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    language: str
    status: str
    token_key: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Campaign:
    id: int
    slug: str
    list_id: int
    content_hash: str
    layout: str
    provider: str
    state: str
    stop_reason: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for sending, with what the message needs of the person."""

    id: int
    variant: str
    language: str
    email: str
    name: str
    token_key: str


_SUBSCRIBER_COLUMNS = (
    s.subscribers.c.id, s.subscribers.c.email, s.subscribers.c.name, s.subscribers.c.language,
    s.subscribers.c.status, s.subscribers.c.token_key, s.subscribers.c.created_at,
)


def email_key(address: str) -> str:
    return address.strip().lower()


class Store:
    def __init__(self, engine: Engine, *, now: Clock = utcnow):
        self.engine = engine
        self.now = now
        # SQLite has one writer: queueing writers here is fairer than its busy handler's
        # growing sleeps, which made the slowest one-click unsubscribes take seconds.
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()

    @classmethod
    def open(cls, url: str, *, now: Clock = utcnow, migrate: bool = True) -> "Store":
        engine = make_engine(url)
        store = cls(engine, now=now)
        if migrate:
            store.migrate()
        return store

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    # --- lists and subscribers ----------------------------------------------------------------

    def _list_id(self, conn: Connection, name: str, create: bool) -> int | None:
        found = conn.execute(select(s.lists.c.id).where(s.lists.c.name == name)).scalar()
        if found is None and create:
            found = conn.execute(insert(s.lists).values(name=name, created_at=self.now()).returning(s.lists.c.id)).scalar_one()
        return found

    def list_id(self, name: str) -> int | None:
        with self.engine.connect() as conn:
            return self._list_id(conn, name, create=False)

    def list_names(self) -> list[tuple[str, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.lists.c.name, func.count(s.list_members.c.subscriber_id))
                .select_from(s.lists.outerjoin(s.list_members))
                .group_by(s.lists.c.name)
                .order_by(s.lists.c.name)
            )
            return [(name, count) for name, count in rows]

    def import_subscribers(self, rows: Iterable[NewSubscriber], list_name: str, secret: bytes) -> ImportResult:
        """Add or update every row and put it on the list, all in one transaction.

        Never resubscribes: a known address keeps its status (unsubscribed, bounced,
        complained), and an address among the suppressions is not added back at all.
        Rows are handled a thousand at a time, with a few statements per chunk.
        """
        result = ImportResult()
        now = self.now()
        c = s.subscribers.c
        with self.engine.begin() as conn:
            list_id = self._list_id(conn, list_name, create=True)
            suppressed = {h for (h,) in conn.execute(select(s.suppressions.c.email_hash))}
            chunk: list[NewSubscriber] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) == 1000:
                    self._import_chunk(conn, chunk, list_id, suppressed, secret, now, result)
                    chunk = []
            if chunk:
                self._import_chunk(conn, chunk, list_id, suppressed, secret, now, result)
        return result

    def _import_chunk(self, conn, chunk, list_id, suppressed, secret, now, result: ImportResult) -> None:
        c = s.subscribers.c
        wanted: dict[str, NewSubscriber] = {}
        for row in chunk:
            key = email_key(row.email)
            if suppressed and email_hash(secret, key) in suppressed:
                result.suppressed += 1
            else:
                wanted[key] = row
        if not wanted:
            return
        existing = {
            key: (subscriber_id, status)
            for subscriber_id, key, status in conn.execute(select(c.id, c.email_key, c.status).where(c.email_key.in_(list(wanted))))
        }
        new = [
            dict(email=row.email, email_key=key, name=row.name, language=row.language, status=s.ACTIVE,
                 token_key=secrets.token_hex(16), created_at=now, updated_at=now)
            for key, row in wanted.items() if key not in existing
        ]
        if new:
            conn.execute(insert(s.subscribers), new)
            result.added += len(new)
        updates = [
            {"subscriber_id": existing[key][0], "new_name": row.name, "new_language": row.language}
            for key, row in wanted.items() if key in existing
        ]
        if updates:
            conn.execute(
                update(s.subscribers)
                .where(c.id == bindparam("subscriber_id"))
                .values(
                    name=func.coalesce(func.nullif(bindparam("new_name"), ""), c.name),
                    language=bindparam("new_language"), updated_at=now,
                ),
                updates,
            )
            for key in wanted:
                if key in existing:
                    if existing[key][1] == s.ACTIVE:
                        result.updated += 1
                    else:
                        result.kept_status += 1
        ids = [i for (i,) in conn.execute(select(c.id).where(c.email_key.in_(list(wanted))))]
        members = {
            i for (i,) in conn.execute(
                select(s.list_members.c.subscriber_id).where(
                    and_(s.list_members.c.list_id == list_id, s.list_members.c.subscriber_id.in_(ids))
                )
            )
        }
        missing = [dict(list_id=list_id, subscriber_id=i, added_at=now) for i in ids if i not in members]
        if missing:
            conn.execute(insert(s.list_members), missing)

    def subscribers(self, list_name: str | None = None, status: str | None = None) -> Iterator[Subscriber]:
        query = select(*_SUBSCRIBER_COLUMNS).order_by(s.subscribers.c.id)
        if list_name is not None:
            query = query.select_from(
                s.subscribers.join(s.list_members, s.list_members.c.subscriber_id == s.subscribers.c.id).join(s.lists)
            ).where(s.lists.c.name == list_name)
        if status is not None:
            query = query.where(s.subscribers.c.status == status)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=1000).execute(query):
                yield Subscriber(*row)

    def _one_subscriber(self, condition) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_SUBSCRIBER_COLUMNS).where(condition)).first()
            return Subscriber(*row) if row else None

    def subscriber_by_email(self, address: str) -> Subscriber | None:
        return self._one_subscriber(s.subscribers.c.email_key == email_key(address))

    def subscriber_by_token_key(self, token_key: str) -> Subscriber | None:
        return self._one_subscriber(s.subscribers.c.token_key == token_key)

    def set_status(self, subscriber_id: int, status: str, *, only_if: tuple[str, ...] | None = None) -> bool:
        with self.engine.begin() as conn:
            query = update(s.subscribers).where(s.subscribers.c.id == subscriber_id)
            if only_if is not None:
                query = query.where(s.subscribers.c.status.in_(only_if))
            return conn.execute(query.values(status=status, updated_at=self.now())).rowcount > 0

    def remove_from_lists(self, address: str, list_name: str | None = None) -> int:
        """Take the person off one list (or all); they stay known, with their status."""
        with self.engine.begin() as conn:
            subscriber_id = conn.execute(
                select(s.subscribers.c.id).where(s.subscribers.c.email_key == email_key(address))
            ).scalar()
            if subscriber_id is None:
                return 0
            query = delete(s.list_members).where(s.list_members.c.subscriber_id == subscriber_id)
            if list_name is not None:
                list_id = self._list_id(conn, list_name, create=False)
                query = query.where(s.list_members.c.list_id == list_id)
            return conn.execute(query).rowcount

    def forget(self, address: str, secret: bytes) -> bool:
        """Erase the person: their row, list memberships and the link from past deliveries.

        Only a keyed hash of the address stays, among the suppressions, so that no later
        import can add them back. Returns False when the address was not known (the hash is
        recorded all the same).
        """
        key = email_key(address)
        with self.engine.begin() as conn:
            subscriber_id = conn.execute(select(s.subscribers.c.id).where(s.subscribers.c.email_key == key)).scalar()
            if subscriber_id is not None:
                conn.execute(update(s.deliveries).where(s.deliveries.c.subscriber_id == subscriber_id).values(subscriber_id=None))
                conn.execute(
                    update(s.feedback_events).where(s.feedback_events.c.subscriber_id == subscriber_id).values(subscriber_id=None)
                )
                conn.execute(delete(s.list_members).where(s.list_members.c.subscriber_id == subscriber_id))
                conn.execute(delete(s.subscribers).where(s.subscribers.c.id == subscriber_id))
            self._suppress(conn, key, "forgotten", secret)
        return subscriber_id is not None

    def _suppress(self, conn: Connection, key: str, reason: str, secret: bytes) -> None:
        digest = email_hash(secret, key)
        exists = conn.execute(select(s.suppressions.c.id).where(s.suppressions.c.email_hash == digest)).first()
        if exists is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(s.suppressions).values(email_hash=digest, reason=reason, created_at=self.now()))
            except IntegrityError:
                pass  # recorded meanwhile by another process

    def suppress(self, address: str, reason: str, secret: bytes) -> None:
        with self.engine.begin() as conn:
            self._suppress(conn, email_key(address), reason, secret)

    def is_suppressed(self, address: str, secret: bytes) -> bool:
        digest = email_hash(secret, email_key(address))
        with self.engine.connect() as conn:
            return conn.execute(select(s.suppressions.c.id).where(s.suppressions.c.email_hash == digest)).first() is not None

    # --- campaigns and the ledger -------------------------------------------------------------

    def find_campaign(self, slug: str, list_id: int) -> Campaign | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_campaign_columns()).where(and_(s.campaigns.c.slug == slug, s.campaigns.c.list_id == list_id))
            ).first()
            return Campaign(*row) if row else None

    def campaign(self, campaign_id: int) -> Campaign | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_campaign_columns()).where(s.campaigns.c.id == campaign_id)).first()
            return Campaign(*row) if row else None

    def campaigns(self) -> list[Campaign]:
        with self.engine.connect() as conn:
            return [Campaign(*row) for row in conn.execute(select(*_campaign_columns()).order_by(s.campaigns.c.id))]

    def create_campaign(
        self, *, slug: str, list_id: int, content_hash: str, layout: str, provider: str,
        variant_for: Callable[[str], str], secret: bytes,
    ) -> tuple[Campaign, dict[str, int]]:
        """Create the campaign and freeze its recipients into the ledger, in one transaction.

        Returns the campaign and the members left out, by reason.
        """
        now = self.now()
        skipped: dict[str, int] = {}
        with self.engine.begin() as conn:
            campaign_id = conn.execute(
                insert(s.campaigns)
                .values(
                    slug=slug, list_id=list_id, content_hash=content_hash, layout=layout, provider=provider,
                    state=s.CAMPAIGN_SENDING, created_at=now,
                )
                .returning(s.campaigns.c.id)
            ).scalar_one()
            suppressed = {h for (h,) in conn.execute(select(s.suppressions.c.email_hash))}
            # page through the list by id: memory stays flat however long the list is
            last_id = 0
            batch: list[dict] = []
            while True:
                members = conn.execute(
                    select(s.subscribers.c.id, s.subscribers.c.email_key, s.subscribers.c.language, s.subscribers.c.status)
                    .select_from(s.subscribers.join(s.list_members, s.list_members.c.subscriber_id == s.subscribers.c.id))
                    .where(and_(s.list_members.c.list_id == list_id, s.subscribers.c.id > last_id))
                    .order_by(s.subscribers.c.id)
                    .limit(5000)
                ).all()
                if not members:
                    break
                last_id = members[-1][0]
                for subscriber_id, key, language, status in members:
                    if status != s.ACTIVE:
                        skipped[status] = skipped.get(status, 0) + 1
                        continue
                    if suppressed and email_hash(secret, key) in suppressed:
                        skipped["suppressed"] = skipped.get("suppressed", 0) + 1
                        continue
                    batch.append(
                        dict(
                            campaign_id=campaign_id, subscriber_id=subscriber_id, variant=variant_for(language),
                            language=language, state=s.PENDING, attempts=0, updated_at=now,
                        )
                    )
                if batch:
                    conn.execute(insert(s.deliveries), batch)
                    batch = []
            if batch:
                conn.execute(insert(s.deliveries), batch)
        campaign = self.campaign(campaign_id)
        assert campaign is not None
        return campaign, skipped

    def set_campaign_state(self, campaign_id: int, state: str, reason: str | None = None) -> None:
        values: dict = {"state": state, "stop_reason": reason}
        if state == s.CAMPAIGN_DONE:
            values["finished_at"] = self.now()
        with self.engine.begin() as conn:
            conn.execute(update(s.campaigns).where(s.campaigns.c.id == campaign_id).values(**values))

    # --- senders: the processes at work on a campaign -----------------------------------------

    def register_sender(self, campaign_id: int, name: str) -> None:
        now = self.now()
        with self.engine.begin() as conn:
            conn.execute(insert(s.senders).values(campaign_id=campaign_id, name=name, started_at=now, heartbeat_at=now))

    def heartbeat(self, name: str, campaign_id: int, lease: float) -> int:
        """Renew this sender's lease; returns how many senders are alive on the campaign."""
        now = self.now()
        with self.engine.begin() as conn:
            conn.execute(update(s.senders).where(s.senders.c.name == name).values(heartbeat_at=now))
            return conn.execute(
                select(func.count()).where(
                    and_(
                        s.senders.c.campaign_id == campaign_id,
                        s.senders.c.stopped_at.is_(None),
                        s.senders.c.heartbeat_at >= now - dt.timedelta(seconds=lease),
                    )
                )
            ).scalar_one()

    def stop_sender(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(s.senders).where(s.senders.c.name == name).values(stopped_at=self.now()))

    def recover_in_flight(self, campaign_id: int, *, lease: float | None = None) -> int:
        """Deliveries left `sending` by a sender that is gone: they may or may not have gone
        out, so they become uncertain. With `lease`, senders whose heartbeat is fresher are
        alive and their deliveries are left alone; without it, every sender is taken as gone."""
        now = self.now()
        with self.engine.begin() as conn:
            query = update(s.deliveries).where(
                and_(s.deliveries.c.campaign_id == campaign_id, s.deliveries.c.state == s.SENDING)
            )
            if lease is not None:
                alive = select(s.senders.c.name).where(
                    and_(
                        s.senders.c.campaign_id == campaign_id,
                        s.senders.c.stopped_at.is_(None),
                        s.senders.c.heartbeat_at >= now - dt.timedelta(seconds=lease),
                    )
                )
                query = query.where(s.deliveries.c.claimed_by.not_in(alive))
            return conn.execute(
                query.values(state=s.UNCERTAIN, last_error="in flight when its sending process stopped", updated_at=now)
            ).rowcount

    def requeue(self, campaign_id: int, states: tuple[str, ...]) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                update(s.deliveries)
                .where(and_(s.deliveries.c.campaign_id == campaign_id, s.deliveries.c.state.in_(states)))
                .values(state=s.PENDING, updated_at=self.now())
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
        sent: list[tuple[int, str]],
        failed: list[tuple[int, str]] = (),
        uncertain: list[tuple[int, str]] = (),
        released: list[int] = (),
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
                update(s.deliveries)
                .where(s.deliveries.c.id == bindparam("delivery_id"))
                .values(state=s.SENT, provider_message_id=bindparam("message_id"), sent_at=now, updated_at=now, last_error=None),
                [{"delivery_id": d, "message_id": m} for d, m in sent],
            )
        for state, items in ((s.FAILED, failed), (s.UNCERTAIN, uncertain)):
            if items:
                conn.execute(
                    update(s.deliveries)
                    .where(s.deliveries.c.id == bindparam("delivery_id"))
                    .values(state=state, last_error=bindparam("error"), updated_at=now),
                    [{"delivery_id": d, "error": e[:2000]} for d, e in items],
                )
        if released:
            conn.execute(
                update(s.deliveries)
                .where(and_(s.deliveries.c.id.in_(list(released)), s.deliveries.c.state == s.SENDING))
                .values(state=s.PENDING, attempts=s.deliveries.c.attempts - 1, updated_at=now)
            )

    def _claim(self, conn: Connection, now, campaign_id: int, limit: int, worker: str) -> list[Claimed]:
        pending = (
            select(s.deliveries.c.id)
            .where(and_(s.deliveries.c.campaign_id == campaign_id, s.deliveries.c.state == s.PENDING))
            .order_by(s.deliveries.c.id)
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
                update(s.deliveries)
                .where(and_(s.deliveries.c.id.in_(candidates), s.deliveries.c.state == s.PENDING))
                .values(state=s.SENDING, claimed_by=worker, claimed_at=now, attempts=s.deliveries.c.attempts + 1, updated_at=now)
                .returning(s.deliveries.c.id)
            )
        ]
        if not ids:
            return []
        rows = conn.execute(
            select(
                s.deliveries.c.id, s.deliveries.c.variant, s.deliveries.c.language,
                s.subscribers.c.email, s.subscribers.c.name, s.subscribers.c.token_key, s.subscribers.c.status,
            )
            .select_from(s.deliveries.outerjoin(s.subscribers, s.deliveries.c.subscriber_id == s.subscribers.c.id))
            .where(s.deliveries.c.id.in_(ids))
            .order_by(s.deliveries.c.id)
        ).all()
        claimed: list[Claimed] = []
        gone: list[dict] = []
        for delivery_id, variant, language, address, name, token_key, status in rows:
            if address is None:
                gone.append({"delivery_id": delivery_id, "error": "the person was forgotten"})
            elif status != s.ACTIVE:
                gone.append({"delivery_id": delivery_id, "error": f"the person is {status}"})
            else:
                claimed.append(Claimed(delivery_id, variant, language, address, name or "", token_key))
        if gone:
            conn.execute(
                update(s.deliveries)
                .where(s.deliveries.c.id == bindparam("delivery_id"))
                .values(state=s.SKIPPED, last_error=bindparam("error"), attempts=s.deliveries.c.attempts - 1, updated_at=now),
                gone,
            )
        return claimed

    def delivery_counts(self, campaign_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.deliveries.c.state, func.count()).where(s.deliveries.c.campaign_id == campaign_id).group_by(s.deliveries.c.state)
            )
            counts = {state: 0 for state in s.DELIVERY_STATES}
            counts.update({state: n for state, n in rows})
            return counts

    # --- feedback ---------------------------------------------------------------------------

    def apply_feedback(self, events, *, message_key: str | None, source: str, policy: FeedbackPolicy, secret: bytes) -> FeedbackOutcome:
        """Record SES feedback events and act on them, all in one transaction.

        Idempotent: a message seen before (by SNS MessageId) or an event seen before (by its
        key) changes nothing. Events are matched to a delivery by the SES message id stored at
        send time, and to the person only when the recipient is that delivery's address
        (compared case-insensitively); anything else is recorded as unknown and ignored.
        """
        outcome = FeedbackOutcome()
        now = self.now()
        with self.engine.begin() as conn:
            if message_key is not None:
                seen = conn.execute(select(s.processed_messages.c.id).where(s.processed_messages.c.message_key == message_key)).first()
                if seen is not None:
                    outcome.repeated_message = True
                    outcome.duplicates = len(events)
                    return outcome
                conn.execute(insert(s.processed_messages).values(message_key=message_key, received_at=now))
            for event in events:
                if conn.execute(select(s.feedback_events.c.id).where(s.feedback_events.c.event_key == event.key)).first():
                    outcome.duplicates += 1
                    continue
                delivery = None
                if event.ses_message_id:
                    delivery = conn.execute(
                        select(s.deliveries.c.id, s.deliveries.c.campaign_id, s.subscribers.c.id, s.subscribers.c.email_key)
                        .select_from(s.deliveries.outerjoin(s.subscribers, s.deliveries.c.subscriber_id == s.subscribers.c.id))
                        .where(s.deliveries.c.provider_message_id == event.ses_message_id)
                    ).first()
                subscriber_id = None
                if delivery is not None and event.recipient and delivery[3] == email_key(event.recipient):
                    subscriber_id = delivery[2]
                if event.recipient and subscriber_id is None:
                    outcome.unknown += 1
                    if delivery is not None and delivery[3] is not None:
                        # an address this message was not sent to: not this delivery's feedback, so
                        # not counted against its campaign (a forgotten person's stays, anonymous)
                        delivery = None
                conn.execute(
                    insert(s.feedback_events).values(
                        event_key=event.key, kind=event.kind, source=source, ses_message_id=event.ses_message_id,
                        campaign_id=delivery[1] if delivery else None, delivery_id=delivery[0] if delivery else None,
                        subscriber_id=subscriber_id,
                        recipient_hash=email_hash(secret, email_key(event.recipient)) if event.recipient else None,
                        bounce_type=event.bounce_type, complaint_type=event.complaint_type, detail=_redact(event.detail),
                        occurred_at=_utc(event.occurred_at), received_at=now,
                    )
                )
                outcome.recorded += 1
                if subscriber_id is None:
                    continue
                if event.hard_bounce or (event.soft_bounce and self._soft_bounce_campaigns(conn, subscriber_id, policy) >= policy.soft_bounce_limit):
                    self._set_status(conn, subscriber_id, s.BOUNCED, from_states=(s.ACTIVE,))
                    self._suppress(conn, delivery[3], "bounced", secret)
                    outcome.bounced += 1
                elif event.is_complaint:
                    self._set_status(conn, subscriber_id, s.COMPLAINED, from_states=(s.ACTIVE, s.UNSUBSCRIBED))
                    self._suppress(conn, delivery[3], "complained", secret)
                    outcome.complained += 1
        return outcome

    def _soft_bounce_campaigns(self, conn: Connection, subscriber_id: int, policy: FeedbackPolicy) -> int:
        cutoff = _utc(self.now()) - dt.timedelta(days=policy.soft_bounce_days)
        return conn.execute(
            select(func.count(func.distinct(s.feedback_events.c.campaign_id))).where(
                and_(
                    s.feedback_events.c.subscriber_id == subscriber_id,
                    s.feedback_events.c.kind == "bounce",
                    s.feedback_events.c.bounce_type.in_(("Transient", "Undetermined")),
                    s.feedback_events.c.occurred_at >= cutoff,
                    s.feedback_events.c.campaign_id.is_not(None),
                )
            )
        ).scalar_one()

    def _set_status(self, conn: Connection, subscriber_id: int, status: str, *, from_states: tuple[str, ...]) -> bool:
        return conn.execute(
            update(s.subscribers)
            .where(and_(s.subscribers.c.id == subscriber_id, s.subscribers.c.status.in_(from_states)))
            .values(status=status, updated_at=self.now())
        ).rowcount > 0

    def unsubscribe(self, token_key: str, campaign_id: int | None) -> tuple[Subscriber | None, bool]:
        """One-click unsubscribe: idempotent; returns the person and whether anything changed."""
        return self._web_change(token_key, campaign_id, s.UNSUBSCRIBED, (s.ACTIVE,), "unsubscribe")

    def resubscribe(self, token_key: str, campaign_id: int | None) -> tuple[Subscriber | None, bool]:
        """Undo an unsubscribe made by mistake; a bounce or complaint is not undone here."""
        return self._web_change(token_key, campaign_id, s.ACTIVE, (s.UNSUBSCRIBED,), "resubscribe")

    def _web_change(self, token_key, campaign_id, status, from_states, kind):
        now = self.now()
        c = s.subscribers.c
        with self._write_lock, self.engine.begin() as conn:
            # the common case in one statement: change the status and read the person back
            row = conn.execute(
                update(s.subscribers)
                .where(and_(c.token_key == token_key, c.status.in_(from_states)))
                .values(status=status, updated_at=now)
                .returning(*_SUBSCRIBER_COLUMNS)
            ).first()
            if row is None:  # unknown token, or nothing to change
                row = conn.execute(select(*_SUBSCRIBER_COLUMNS).where(c.token_key == token_key)).first()
                return (Subscriber(*row) if row else None), False
            subscriber = Subscriber(*row)
            # linked to the delivery of the campaign whose link was used (found in the same
            # statement), so the report still counts it after the person is forgotten
            d = s.deliveries.c
            delivery = and_(d.campaign_id == (campaign_id or 0), d.subscriber_id == subscriber.id)
            conn.execute(
                insert(s.feedback_events).values(
                    event_key=secrets.token_hex(16), kind=kind, source="web",
                    campaign_id=select(d.campaign_id).where(delivery).scalar_subquery(),
                    delivery_id=select(d.id).where(delivery).scalar_subquery(),
                    subscriber_id=subscriber.id, occurred_at=now, received_at=now,
                )
            )
        return subscriber, True

    def report(self, campaign_id: int | None = None) -> list[dict]:
        """Per campaign and language: recipients, delivery states, bounces, complaints, unsubscribes."""
        d, f = s.deliveries.c, s.feedback_events.c
        with self.engine.connect() as conn:
            query = select(d.campaign_id, d.language, d.state, func.count()).group_by(d.campaign_id, d.language, d.state)
            if campaign_id is not None:
                query = query.where(d.campaign_id == campaign_id)
            rows: dict[tuple[int, str], dict] = {}
            for cid, language, state, count in conn.execute(query):
                row = rows.setdefault((cid, language), _empty_report(cid, language))
                row["recipients"] += count
                if state in row:
                    row[state] += count
            events = (
                select(f.campaign_id, d.language, f.kind, f.bounce_type, f.complaint_type, func.count(func.distinct(f.delivery_id)))
                .select_from(s.feedback_events.join(s.deliveries, s.deliveries.c.id == f.delivery_id))
                .group_by(f.campaign_id, d.language, f.kind, f.bounce_type, f.complaint_type)
            )
            if campaign_id is not None:
                events = events.where(f.campaign_id == campaign_id)
            for cid, language, kind, bounce_type, complaint_type, count in conn.execute(events):
                row = rows.setdefault((cid, language), _empty_report(cid, language))
                if kind == "bounce":
                    row["hard_bounces" if bounce_type == "Permanent" else "soft_bounces"] += count
                elif kind == "complaint" and complaint_type != "not-spam":
                    row["complaints"] += count
                elif kind == "unsubscribe":
                    row["unsubscribes"] += count
            campaigns = {c.id: c for c in self.campaigns()}
            out = []
            for (cid, language), row in sorted(rows.items()):
                row["campaign"] = campaigns[cid].slug if cid in campaigns else None
                out.append(row)
            return out

    def deliveries_in(self, campaign_id: int, state: str) -> list[tuple[int, str | None, str | None]]:
        """(delivery id, address or None when forgotten, last error) for one state."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.deliveries.c.id, s.subscribers.c.email, s.deliveries.c.last_error)
                .select_from(s.deliveries.outerjoin(s.subscribers, s.deliveries.c.subscriber_id == s.subscribers.c.id))
                .where(and_(s.deliveries.c.campaign_id == campaign_id, s.deliveries.c.state == state))
                .order_by(s.deliveries.c.id)
            )
            return [tuple(row) for row in rows]


@dataclass(frozen=True)
class FeedbackPolicy:
    soft_bounce_limit: int = 3  # soft bounces in this many different campaigns…
    soft_bounce_days: int = 90  # …within this many days suppress the address


@dataclass
class FeedbackOutcome:
    recorded: int = 0
    duplicates: int = 0
    unknown: int = 0
    bounced: int = 0
    complained: int = 0
    repeated_message: bool = False


_ADDRESS_IN_TEXT = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")


def _redact(text: str | None) -> str | None:
    """Diagnostic codes quote the address (`550 5.1.1 <jane@example.com>`): keep the code only."""
    if text is None:
        return None
    return _ADDRESS_IN_TEXT.sub("<address>", text)[:500]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc) if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _empty_report(campaign_id: int, language: str) -> dict:
    return {
        "campaign_id": campaign_id, "language": language, "recipients": 0, s.SENT: 0, s.FAILED: 0, s.UNCERTAIN: 0,
        s.PENDING: 0, s.SENDING: 0, s.SKIPPED: 0, "hard_bounces": 0, "soft_bounces": 0, "complaints": 0, "unsubscribes": 0,
    }


def _campaign_columns():
    c = s.campaigns.c
    return (c.id, c.slug, c.list_id, c.content_hash, c.layout, c.provider, c.state, c.stop_reason, c.created_at)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # enough connections for the web server's thread pool (40 threads)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=20, max_overflow=30)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed `sent` survives power loss, not only a killed process
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True)
