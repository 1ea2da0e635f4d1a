"""The ledger: one row per recipient and campaign, claimed before sending and recorded
after, so that a crash at any moment leaves each delivery pending, sent or in flight (then
uncertain). The senders table lets several processes share a campaign; the sender lock keeps
a second `send` of the same campaign out."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, insert, select, text, update
from sqlalchemy.engine import Connection

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.audience.selection import Standing, decide
from newsletter.domain import Claimed
from newsletter.errors import NewsletterError
from newsletter.store.database import Repository, load_attributes, redact


class SenderBusy(NewsletterError):
    """Another process is sending the same campaign."""

    exit_code = 1


class Ledger(Repository):
    """Deliveries (claimed, recorded, counted) and the senders at work on a campaign."""

    # --- senders: the processes at work on a campaign -----------------------------------------

    @contextlib.contextmanager
    def sender_lock(self, key: str, *, shared: bool = False) -> Iterator[None]:
        """Held while this process sends the campaign named by `key`; released when it ends or
        dies (kill -9 included), so a dead sender never leaves a campaign stuck. `shared`:
        the workers of one campaign on PostgreSQL hold it together; a plain `send` alone.
        Raises SenderBusy when another process holds it."""
        if self.db.engine.dialect.name == "postgresql":
            with self._advisory_lock(key, shared):
                yield
            return
        database = self.db.engine.url.database
        if not database or database == ":memory:":
            yield
            return
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        path = Path(f"{database}.send-{digest}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "another process"
                raise SenderBusy(_busy(key, f"process {holder}")) from None
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode("ascii"))
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextlib.contextmanager
    def _advisory_lock(self, key: str, shared: bool) -> Iterator[None]:
        number = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big", signed=True)
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        conn = self.db.engine.connect()
        conn.detach()  # its own session, closed (not pooled) at the end: that releases the lock
        try:
            if not conn.execute(text(f"SELECT {function}(:n)"), {"n": number}).scalar():
                raise SenderBusy(_busy(key, "another process"))
            conn.commit()
            yield
        finally:
            conn.close()  # the session ends: PostgreSQL releases its advisory locks

    def register_sender(self, campaign_id: int, name: str) -> None:
        now = self.db.now()
        with self.db.write() as conn:
            conn.execute(insert(t.senders).values(campaign_id=campaign_id, name=name, started_at=now, heartbeat_at=now))

    def heartbeat(self, name: str, campaign_id: int, lease: float) -> int:
        """Renew this sender's lease; returns how many senders are alive on the campaign."""
        now = self.db.now()
        with self.db.write() as conn:
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
        with self.db.write() as conn:
            conn.execute(update(t.senders).where(t.senders.c.name == name).values(stopped_at=self.db.now()))

    def recover_in_flight(self, campaign_id: int, *, lease: float | None = None) -> int:
        """Deliveries left `sending` by a sender that is gone: they may or may not have gone
        out, so they become uncertain. With `lease`, senders whose heartbeat is fresher are
        alive and their deliveries are left alone; without it, every sender is taken as gone."""
        now = self.db.now()
        with self.db.write() as conn:
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
        with self.db.write() as conn:
            return conn.execute(
                update(t.deliveries)
                .where(and_(t.deliveries.c.campaign_id == campaign_id, t.deliveries.c.state.in_(states)))
                .values(state=d.PENDING, updated_at=self.db.now())
            ).rowcount

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
        skipped: Sequence[tuple[int, str]] = (),
    ) -> list[Claimed]:
        """Record results and claim the next deliveries, in one transaction (one commit).

        `sent`: (delivery id, provider message id); `failed`/`uncertain`: (id, error);
        `released`: claimed but never handed to the provider, back to pending; `skipped`:
        (id, reason) claimed but no longer wanted. Then up to `limit` pending deliveries become
        `sending`, claimed by `worker`. On PostgreSQL the claim skips rows other senders hold
        (FOR UPDATE SKIP LOCKED). Deliveries whose person is gone, no longer active or off the
        campaign's lists are marked skipped instead of claimed, and the claim goes on past them.
        """
        now = self.db.now()
        with self.db.write() as conn:
            self._record(conn, now, sent, failed, uncertain, released, skipped)
            if campaign_id is None or limit <= 0:
                return []
            return self._claim(conn, now, campaign_id, limit, worker)

    def _record(self, conn: Connection, now, sent, failed, uncertain, released, skipped=()) -> None:
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
        for state, items in ((d.FAILED, failed), (d.UNCERTAIN, uncertain), (d.SKIPPED, skipped)):
            if items:
                query = update(t.deliveries).where(t.deliveries.c.id == bindparam("delivery_id"))
                if state == d.SKIPPED:  # never handed over: the attempt does not count
                    query = query.values(attempts=t.deliveries.c.attempts - 1)
                conn.execute(
                    query.values(state=state, last_error=bindparam("error"), updated_at=now),
                    [{"delivery_id": i, "error": redact(e, 2000)} for i, e in items],
                )
        if released:
            conn.execute(
                update(t.deliveries)
                .where(and_(t.deliveries.c.id.in_(list(released)), t.deliveries.c.state == d.SENDING))
                .values(state=d.PENDING, attempts=t.deliveries.c.attempts - 1, updated_at=now)
            )

    def _claim(self, conn: Connection, now, campaign_id: int, limit: int, worker: str) -> list[Claimed]:
        state = conn.execute(select(t.campaigns.c.state).where(t.campaigns.c.id == campaign_id)).scalar()
        if state == d.CAMPAIGN_CANCELLED:
            return []
        claimed: list[Claimed] = []
        while len(claimed) < limit:
            pending = (
                select(t.deliveries.c.id)
                .where(and_(t.deliveries.c.campaign_id == campaign_id, t.deliveries.c.state == d.PENDING))
                .order_by(t.deliveries.c.id)
                .limit(limit - len(claimed))
            )
            if conn.dialect.name == "postgresql":
                pending = pending.with_for_update(skip_locked=True)
            candidates = [row[0] for row in conn.execute(pending)]
            if not candidates:
                break
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
                break
            gone: list[tuple[int, str]] = []
            for delivery_id, variant, language, address, name, token_key, reason, attrs in self._recipients(conn, ids):
                if reason is not None:
                    gone.append((delivery_id, reason))
                else:
                    claimed.append(Claimed(delivery_id, variant, language, address, name or "", token_key, attrs))
            self._record(conn, now, (), (), (), (), gone)
        return claimed

    def _recipients(self, conn: Connection, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        """(delivery id, variant, language, address, name, token key, reason not to send or None,
        the person's attributes)."""
        dl, s = t.deliveries.c, t.subscribers.c
        on_its_lists = exists().where(
            and_(
                t.campaign_lists.c.campaign_id == dl.campaign_id,
                t.list_members.c.list_id == t.campaign_lists.c.list_id,
                t.list_members.c.subscriber_id == dl.subscriber_id,
            )
        )
        rows = conn.execute(
            select(
                dl.id,
                dl.variant,
                dl.language,
                s.email,
                s.name,
                s.token_key,
                s.status,
                on_its_lists,
                s.attributes,
                t.campaigns.c.state,
            )
            .select_from(t.deliveries.join(t.campaigns).outerjoin(t.subscribers, dl.subscriber_id == s.id))
            .where(dl.id.in_(list(ids)))
            .order_by(dl.id)
        ).all()
        out = []
        for (
            delivery_id,
            variant,
            language,
            address,
            name,
            token_key,
            status,
            member,
            attributes,
            campaign_state,
        ) in rows:
            standing = Standing(
                None if address is None else status,
                language,
                on_lists=bool(member),
                cancelled=campaign_state == d.CAMPAIGN_CANCELLED,
                variant=variant,
            )
            reason = decide(standing).reason
            out.append((delivery_id, variant, language, address, name, token_key, reason, load_attributes(attributes)))
        return out

    def waiting(self, campaign_id: int, states: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """The deliveries in `states` as a claim would see them: (delivery id, variant, language,
        address, name, token key, reason not to send or None, attributes). Writes nothing."""
        dl = t.deliveries.c
        with self.db.read() as conn:
            last_id = 0
            while ids := list(
                conn.execute(
                    select(dl.id)
                    .where(dl.campaign_id == campaign_id, dl.state.in_(list(states)), dl.id > last_id)
                    .order_by(dl.id)
                    .limit(1000)
                ).scalars()
            ):
                last_id = ids[-1]
                yield from self._recipients(conn, ids)

    def still_wanted(self, delivery_id: int) -> str | None:
        """Why a claimed delivery should not go out after all (its person left meanwhile), or None."""
        with self.db.read() as conn:
            rows = self._recipients(conn, [delivery_id])
        return rows[0][6] if rows else "the delivery is gone"

    def delivery_counts(self, campaign_id: int) -> dict[str, int]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.deliveries.c.state, func.count())
                .where(t.deliveries.c.campaign_id == campaign_id)
                .group_by(t.deliveries.c.state)
            )
            counts = dict.fromkeys(d.DELIVERY_STATES, 0)
            counts.update({state: n for state, n in rows})  # noqa: C416 - a result with keys() is no mapping of rows
            return counts

    def failure_reasons(self, campaign_id: int) -> list[tuple[str, str, int]]:
        """(state, reason, how many) for the failed, uncertain and skipped deliveries, most first."""
        dl = t.deliveries.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(dl.state, dl.last_error, func.count())
                .where(dl.campaign_id == campaign_id, dl.state.in_((d.FAILED, d.UNCERTAIN, d.SKIPPED)))
                .group_by(dl.state, dl.last_error)
            ).all()
        return sorted(((state, reason or "", n) for state, reason, n in rows), key=lambda r: (-r[2], r[0], r[1]))

    def deliveries_in(self, campaign_id: int, state: str) -> list[tuple[int, str | None, str | None]]:
        """(delivery id, address or None when forgotten, last error) for one state."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.deliveries.c.id, t.subscribers.c.email, t.deliveries.c.last_error)
                .select_from(t.deliveries.outerjoin(t.subscribers, t.deliveries.c.subscriber_id == t.subscribers.c.id))
                .where(and_(t.deliveries.c.campaign_id == campaign_id, t.deliveries.c.state == state))
                .order_by(t.deliveries.c.id)
            )
            return [tuple(row) for row in rows]


def _busy(key: str, holder: str) -> str:
    slug, _, rest = key.partition("|")
    return (
        f"{slug}: this campaign is being sent by {holder}; wait for it to finish, or stop it "
        "(Ctrl-C) and run send again, which resumes where it stopped"
    )
