"""Sign-ups in the store: pending sign-ups, their confirmation (the person active on the list, with
consent recorded), a reader's language, and what is stored about a person (`subscribers show`).

A pending sign-up keeps the address it was asked for until it is confirmed or expires, never
longer, and is found by the keyed hash of the address. No IP address or user agent is stored.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.addresses import email_key
from newsletter.domain import PersonRecord, Subscriber
from newsletter.keys import email_hash
from newsletter.store.database import as_utc
from newsletter.store.subscribers import SUBSCRIBER_COLUMNS, SubscriberStore
from newsletter.store.values import load_attributes


@dataclass(frozen=True)
class SignupRequest:
    email: str  # normalised
    name: str
    language: str  # a configured language or "both"
    list_name: str
    consent_version: str
    source: str  # how the person came: "sign-up form"


@dataclass(frozen=True)
class PendingSignup:
    token_key: str
    email: str
    name: str
    language: str
    requested_at: dt.datetime
    expires_at: dt.datetime


# What a confirmation came to.
CONFIRMED = "confirmed"
EXPIRED = "expired"
UNKNOWN = "unknown"  # used already, replaced by a newer link, or the address was forgotten meanwhile


@dataclass(frozen=True)
class Confirmation:
    outcome: str
    subscriber: Subscriber | None = None


class SignupStore(SubscriberStore):
    def request_signup(
        self, request: SignupRequest, secret: bytes, *, resend_after: dt.timedelta, valid_for: dt.timedelta
    ) -> PendingSignup | None:
        """Create or refresh the pending sign-up for the address and return it when its
        confirmation message is to be sent now; None when the address is suppressed (nothing is
        kept about it) or a confirmation went to it less than `resend_after` ago (nothing changes)."""
        now = self.now()
        digest = email_hash(secret, email_key(request.email))
        s = t.signups.c
        with self._write_lock, self.engine.begin() as conn:
            self._purge_signups(conn, now)
            suppressed = conn.execute(select(t.suppressions.c.id).where(t.suppressions.c.email_hash == digest)).first()
            if suppressed is not None:
                return None
            row = conn.execute(select(s.id, s.sent_at).where(s.email_hash == digest)).first()
            if row is not None and row.sent_at is not None and as_utc(row.sent_at) > now - resend_after:
                return None
            token_key, expires_at = (
                secrets.token_hex(16),
                now + valid_for,
            )  # a fresh link: the one sent before stops working
            values = {
                "token_key": token_key,
                "email": request.email,
                "name": request.name,
                "language": request.language,
                "list_name": request.list_name,
                "consent_version": request.consent_version,
                "source": request.source,
                "requested_at": now,
                "sent_at": now,
                "expires_at": expires_at,
            }
            if row is None:
                conn.execute(insert(t.signups).values(email_hash=digest, **values))
            else:
                conn.execute(update(t.signups).where(s.id == row.id).values(**values))
        return PendingSignup(token_key, request.email, request.name, request.language, now, expires_at)

    def signup_not_sent(self, token_key: str) -> None:
        """The confirmation could not be sent: the person may try again at once."""
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(update(t.signups).where(t.signups.c.token_key == token_key).values(sent_at=None))

    def pending_signup(self, token_key: str) -> PendingSignup | None:
        s = t.signups.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(s.token_key, s.email, s.name, s.language, s.requested_at, s.expires_at).where(
                    s.token_key == token_key
                )
            ).first()
        if row is None:
            return None
        return PendingSignup(row[0], row[1], row[2], row[3], as_utc(row[4]), as_utc(row[5]))

    def confirm_signup(self, token_key: str, secret: bytes) -> Confirmation:
        """The person active on the sign-up's list, with their consent recorded, and the sign-up
        gone, in one transaction. Whatever their status was (unsubscribed, bounced, complained),
        this is the fresh confirmation that may change it; a suppressed address stays out."""
        now = self.now()
        s, c = t.signups.c, t.subscribers.c
        with self._write_lock, self.engine.begin() as conn:
            row = conn.execute(select(t.signups).where(s.token_key == token_key)).first()
            # the delete is the claim: of two confirmations at once, one finds nothing left to delete
            if row is None or conn.execute(delete(t.signups).where(s.id == row.id)).rowcount == 0:
                return Confirmation(UNKNOWN)
            if as_utc(row.expires_at) <= now:
                return Confirmation(EXPIRED)
            suppressed = conn.execute(
                select(t.suppressions.c.id).where(t.suppressions.c.email_hash == row.email_hash)
            ).first()
            if suppressed is not None:
                return Confirmation(UNKNOWN)
            key = email_key(row.email)
            consent = {
                "consent_at": now,
                "consent_version": row.consent_version,
                "consent_source": row.source,
                "status": d.ACTIVE,
                "language": row.language,
                "updated_at": now,
            }
            subscriber_id = conn.execute(select(c.id).where(c.email_key == key)).scalar()
            if subscriber_id is None:
                subscriber_id = conn.execute(
                    insert(t.subscribers)
                    .values(
                        email=row.email,
                        email_key=key,
                        name=row.name,
                        token_key=secrets.token_hex(16),
                        created_at=now,
                        **consent,
                    )
                    .returning(c.id)
                ).scalar_one()
            else:
                if row.name:
                    consent["name"] = row.name
                conn.execute(update(t.subscribers).where(c.id == subscriber_id).values(**consent))
            list_id = self._list_id(conn, row.list_name, create=True)
            member = conn.execute(
                select(t.list_members.c.list_id).where(
                    t.list_members.c.list_id == list_id, t.list_members.c.subscriber_id == subscriber_id
                )
            ).first()
            if member is None:
                conn.execute(insert(t.list_members).values(list_id=list_id, subscriber_id=subscriber_id, added_at=now))
            conn.execute(
                insert(t.feedback_events).values(
                    event_key=secrets.token_hex(16),
                    kind="subscribe",
                    source="web",
                    subscriber_id=subscriber_id,
                    occurred_at=now,
                    received_at=now,
                )
            )
            person = conn.execute(select(*SUBSCRIBER_COLUMNS).where(c.id == subscriber_id)).one()
        self.flush_erased()  # the sign-up's row held the address: no copy of it stays in free pages
        return Confirmation(CONFIRMED, Subscriber(*person))

    def set_language(self, token_key: str, language: str) -> Subscriber | None:
        """The reader's own choice of language (by their unsubscribe token's key), for the next campaign."""
        c = t.subscribers.c
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                update(t.subscribers).where(c.token_key == token_key).values(language=language, updated_at=self.now())
            )
            row = conn.execute(select(*SUBSCRIBER_COLUMNS).where(c.token_key == token_key)).first()
        return Subscriber(*row) if row else None

    def purge_signups(self) -> int:
        """Delete the sign-ups past their expiry; how many."""
        with self._write_lock, self.engine.begin() as conn:
            count = self._purge_signups(conn, self.now())
        if count:
            self.flush_erased()
        return count

    def _purge_signups(self, conn: Connection, now: dt.datetime) -> int:
        return conn.execute(delete(t.signups).where(t.signups.c.expires_at <= now)).rowcount

    def person(self, address: str, secret: bytes) -> PersonRecord | None:
        """What is stored about the person with this address (None when nothing is)."""
        c = t.subscribers.c
        key = email_key(address)
        digest = email_hash(secret, key)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    *SUBSCRIBER_COLUMNS, c.updated_at, c.attributes, c.consent_at, c.consent_version, c.consent_source
                ).where(c.email_key == key)
            ).first()
            pending = conn.execute(select(t.signups.c.requested_at).where(t.signups.c.email_hash == digest)).scalar()
            suppressed = (
                conn.execute(select(t.suppressions.c.id).where(t.suppressions.c.email_hash == digest)).first()
                is not None
            )
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

    def count_signups(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t.signups)).scalar_one()


def _pending_only(address: str, requested: dt.datetime, suppressed: bool) -> PersonRecord:
    """A person known only by a sign-up that awaits confirmation."""
    nobody = Subscriber(0, address, "", "", "pending confirmation", "", requested)
    return PersonRecord(nobody, requested, {}, None, None, None, [], [], [], suppressed, requested)
