"""Reports: per campaign and language, what was sent and what came back; and what is stored
about one person (`subscribers show`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.domain import PersonRecord, Subscriber
from newsletter.keys import email_hash, email_key
from newsletter.store.campaigns import Campaigns
from newsletter.store.database import Repository, as_utc, is_suppressed, load_attributes
from newsletter.store.subscribers import SUBSCRIBER_COLUMNS


class Reports(Repository):
    """What the store can tell about campaigns and people, writing nothing."""

    def campaigns(self, campaign_id: int | None = None) -> list[dict]:
        """Per campaign and language: recipients, delivery states, bounces, complaints, unsubscribes."""
        d, f = t.deliveries.c, t.feedback_events.c
        with self.db.read() as conn:
            query = select(d.campaign_id, d.language, d.state, func.count()).group_by(
                d.campaign_id, d.language, d.state
            )
            if campaign_id is not None:
                query = query.where(d.campaign_id == campaign_id)
            rows: dict[tuple[int, str], dict] = {}
            for cid, language, state, count in conn.execute(query):
                row = rows.setdefault((cid, language), _empty_report(cid, language))
                row["recipients"] += count
                if state in row:
                    row[state] += count
            events = (
                select(
                    f.campaign_id,
                    d.language,
                    f.kind,
                    f.bounce_type,
                    f.complaint_type,
                    func.count(func.distinct(f.delivery_id)),
                )
                .select_from(t.feedback_events.join(t.deliveries, t.deliveries.c.id == f.delivery_id))
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
            campaigns = {c.id: c for c in Campaigns(self.db).all()}
            out = []
            for (cid, _language), row in sorted(rows.items()):
                c = campaigns.get(cid)
                row["campaign"] = c.slug if c else None
                row["lists"] = list(c.lists) if c else []
                row["provider"] = (c.provider + " (rehearsal)" if c.rehearsal else c.provider) if c else None
                row["state"] = c.state if c else None
                row["started"] = c.created_at.isoformat(timespec="minutes") if c and c.created_at else None
                row["finished"] = c.finished_at.isoformat(timespec="minutes") if c and c.finished_at else None
                out.append(row)
            return out

    def person(self, address: str, secret: bytes) -> PersonRecord | None:
        """What is stored about the person with this address (None when nothing is)."""
        c = t.subscribers.c
        key = email_key(address)
        digest = email_hash(secret, key)
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    *SUBSCRIBER_COLUMNS, c.updated_at, c.attributes, c.consent_at, c.consent_version, c.consent_source
                ).where(c.email_key == key)
            ).first()
            pending = conn.execute(select(t.signups.c.requested_at).where(t.signups.c.email_hash == digest)).scalar()
            suppressed = is_suppressed(conn, digest)
            if row is None:
                if pending is None and not suppressed:
                    return None
                return None if pending is None else _pending_only(address, as_utc(pending), suppressed)
            subscriber = Subscriber(*row[: len(SUBSCRIBER_COLUMNS)])
            updated_at, attributes, consent_at, version, source = row[len(SUBSCRIBER_COLUMNS) :]
            lists = list(
                conn.execute(
                    select(t.lists.c.name)
                    .join(t.list_members, t.list_members.c.list_id == t.lists.c.id)
                    .where(t.list_members.c.subscriber_id == subscriber.id)
                    .order_by(t.lists.c.name)
                ).scalars()
            )
            dl, cp = t.deliveries.c, t.campaigns.c
            deliveries = [
                (slug, state, as_utc(sent) if sent else None)
                for slug, state, sent in conn.execute(
                    select(cp.slug, dl.state, dl.sent_at)
                    .join(t.campaigns, cp.id == dl.campaign_id)
                    .where(dl.subscriber_id == subscriber.id, cp.rehearsal.is_(False))
                    .order_by(dl.id)
                )
            ]
            fe = t.feedback_events.c
            events = [
                (kind, source_, as_utc(when))
                for kind, source_, when in conn.execute(
                    select(fe.kind, fe.source, fe.occurred_at).where(fe.subscriber_id == subscriber.id).order_by(fe.id)
                )
            ]
        return PersonRecord(
            subscriber=subscriber,
            updated_at=as_utc(updated_at),
            attributes=load_attributes(attributes),
            consent_at=as_utc(consent_at) if consent_at else None,
            consent_version=version,
            consent_source=source,
            lists=lists,
            deliveries=deliveries,
            events=events,
            suppressed=suppressed,
            pending_signup=as_utc(pending) if pending else None,
        )


def _empty_report(campaign_id: int, language: str) -> dict:
    return {
        "campaign_id": campaign_id,
        "language": language,
        "recipients": 0,
        d.SENT: 0,
        d.FAILED: 0,
        d.UNCERTAIN: 0,
        d.PENDING: 0,
        d.SENDING: 0,
        d.SKIPPED: 0,
        "hard_bounces": 0,
        "soft_bounces": 0,
        "complaints": 0,
        "unsubscribes": 0,
    }


def _pending_only(address: str, requested: dt.datetime, suppressed: bool) -> PersonRecord:
    """A person known only by a sign-up that awaits confirmation."""
    nobody = Subscriber(0, address, "", "", "pending confirmation", "", requested)
    return PersonRecord(nobody, requested, {}, None, None, None, [], [], [], suppressed, requested)
