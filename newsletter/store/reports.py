"""Reports: per campaign and language, what was sent and what came back; and what is stored
about one person (`subscribers show`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, case, func, or_, select

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.domain import PersonRecord, Subscriber
from newsletter.feedback.policy import PERMANENT
from newsletter.feedback.reasons import NOT_THE_RECIPIENT
from newsletter.keys import email_hash, email_key
from newsletter.store.campaigns import Campaigns
from newsletter.store.database import Repository, as_utc, is_suppressed, load_attributes
from newsletter.store.subscribers import SUBSCRIBER_COLUMNS


class Reports(Repository):
    """What the store can tell about campaigns and people, writing nothing."""

    def campaigns(self, campaign_id: int | None = None) -> list[dict]:
        """Per campaign and language: recipients, delivery states, bounces (hard, soft, and
        `our_problems`: those whose reason is about our sending or our letter), complaints,
        unsubscribes."""
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
            column = _column()
            events = (
                select(f.campaign_id, d.language, column, func.count(func.distinct(f.delivery_id)))
                .select_from(t.feedback_events.join(t.deliveries, t.deliveries.c.id == f.delivery_id))
                .where(column.is_not(None))
                .group_by(f.campaign_id, d.language, column)
            )
            if campaign_id is not None:
                events = events.where(f.campaign_id == campaign_id)
            for cid, language, counted_as, count in conn.execute(events):
                rows.setdefault((cid, language), _empty_report(cid, language))[counted_as] += count
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

    def bounce_reasons(self, campaign_id: int) -> dict[str, int]:
        """A campaign's bounced deliveries by reason (bounces stored before reasons were: none)."""
        f = t.feedback_events.c
        query = (
            select(f.reason, func.count(func.distinct(f.delivery_id)))
            .where(f.campaign_id == campaign_id, f.kind == "bounce", f.reason.is_not(None), f.delivery_id.is_not(None))
            .group_by(f.reason)
            .order_by(func.count(func.distinct(f.delivery_id)).desc(), f.reason)
        )
        with self.db.read() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}


def _column():
    """Where an event counts in the report (newsletter.feedback.policy's rules): a bounce whose
    reason is about our sending or our letter is ours, whatever its type; a not-spam report and
    the events nobody counts are nowhere (None). A delivery counts once in each column."""
    f = t.feedback_events.c
    bounce, complaint = f.kind == "bounce", f.kind == "complaint"
    return case(
        (and_(bounce, f.reason.in_(sorted(NOT_THE_RECIPIENT))), "our_problems"),
        (and_(bounce, f.bounce_type == PERMANENT), "hard_bounces"),
        (bounce, "soft_bounces"),
        (and_(complaint, or_(f.complaint_type.is_(None), f.complaint_type != "not-spam")), "complaints"),
        (f.kind == "unsubscribe", "unsubscribes"),
        else_=None,
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
        "our_problems": 0,
        "complaints": 0,
        "unsubscribes": 0,
    }


def _pending_only(address: str, requested: dt.datetime, suppressed: bool) -> PersonRecord:
    """A person known only by a sign-up that awaits confirmation."""
    nobody = Subscriber(0, address, "", "", "pending confirmation", "", requested)
    return PersonRecord(nobody, requested, {}, None, None, None, [], [], [], suppressed, requested)
