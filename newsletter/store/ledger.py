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

from sqlalchemy import and_, func, insert, select, text, update

import newsletter.store.claims as claims
import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.domain import Claimed
from newsletter.errors import NewsletterError
from newsletter.store.claims import Results, Turn, Waiting
from newsletter.store.database import Repository


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
        """Record results and claim the next deliveries, in one transaction: `turn` without a
        second look at deliveries claimed before."""
        results = Results(sent, failed, uncertain, released, skipped)
        return self.turn(campaign_id, worker, limit, results).claimed

    def turn(
        self, campaign_id: int | None, worker: str, limit: int, results: Results, recheck: Sequence[int] = ()
    ) -> Turn:
        """One turn of a sender, in one transaction (one commit) of at most three statements
        whatever the batch's size: record `results`, claim up to `limit` pending deliveries
        (`sending`, claimed by `worker`; on PostgreSQL skipping rows other senders hold), and
        look again at the people of `recheck` (claimed earlier, not yet handed to the
        provider). Deliveries whose person is gone, no longer active or off the campaign's
        lists are marked skipped instead of claimed, and the claim goes on past them; among
        `recheck`, they are returned as `unwanted` (id → reason), for the sender to skip."""
        now = self.db.now()
        claimed: list[Claimed] = []
        unwanted: dict[int, str] = {}
        writes = bool(results) or (campaign_id is not None and limit > 0)
        with self.db.write() if writes else self.db.read() as conn:
            claims.record(conn, now, results)
            if campaign_id is None:
                return Turn(claimed, unwanted)
            ids = claims.claim(conn, now, campaign_id, limit, worker) if limit > 0 else []
            looked = claims.recipients(conn, [*ids, *recheck])
            fresh = set(ids)
            while True:
                gone = [(w.id, w.reason) for w in looked if w.id in fresh and w.reason is not None]
                claimed += [w.claimed() for w in looked if w.id in fresh and w.reason is None]
                unwanted.update((w.id, w.reason) for w in looked if w.id not in fresh and w.reason is not None)
                if not gone:
                    break
                claims.record(conn, now, Results(skipped=gone))
                ids = claims.claim(conn, now, campaign_id, limit - len(claimed), worker)
                looked, fresh = claims.recipients(conn, ids), set(ids)
        claimed.sort(key=lambda c: c.id)
        return Turn(claimed, unwanted)

    def waiting(self, campaign_id: int, states: Sequence[str]) -> Iterator[Waiting]:
        """The deliveries in `states` as a claim would see them, each with the reason not to send
        it or None. Writes nothing."""
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
                yield from claims.recipients(conn, ids)

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
