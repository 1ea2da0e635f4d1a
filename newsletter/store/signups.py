"""Sign-ups in the store: pending sign-ups and their confirmation (the person active on the list,
with consent recorded).

A pending sign-up keeps the address it was asked for until it is confirmed or expires, never
longer, and is found by the keyed hash of the address. No IP address or user agent is stored.
At most one message goes to an address every 10 minutes, whether it asked to confirm or told
someone already on the list so: that is counted among the sign-up form's counters
(newsletter.store.limits), which outlive the pending sign-up's confirmation.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.domain import Subscriber
from newsletter.keys import email_hash, email_key
from newsletter.store.database import Repository, as_utc, is_suppressed, list_id
from newsletter.store.feedback import insert_event
from newsletter.store.limits import WINDOW, message_key, record, seen, serialised, unrecord
from newsletter.store.subscribers import SUBSCRIBER_COLUMNS


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


@dataclass(frozen=True)
class KnownSubscriber:
    """Someone active on the list who signed up again: they are told so, with their page."""

    email: str
    name: str
    language: str
    token_key: str  # what their page's link names
    message_key: str  # the counter of messages to their address (newsletter.store.limits)


# What a confirmation came to.
CONFIRMED = "confirmed"
EXPIRED = "expired"
UNKNOWN = "unknown"  # used already, replaced by a newer link, or the address was forgotten meanwhile


@dataclass(frozen=True)
class Confirmation:
    outcome: str
    subscriber: Subscriber | None = None


def _on_the_list(conn: Connection, key: str, list_name: str) -> tuple[str, str, str, str] | None:
    """(address, name, language, token key) of the person with this address key, when they are
    active on the list."""
    c, m = t.subscribers.c, t.list_members.c
    row = conn.execute(
        select(c.email, c.name, c.language, c.token_key)
        .join(t.list_members, m.subscriber_id == c.id)
        .join(t.lists, t.lists.c.id == m.list_id)
        .where(c.email_key == key, c.status == d.ACTIVE, t.lists.c.name == list_name)
    ).first()
    return (row[0], row[1], row[2], row[3]) if row is not None else None


def _pending(
    conn: Connection, request: SignupRequest, digest: str, now: dt.datetime, expires_at: dt.datetime
) -> PendingSignup:
    """The address's pending sign-up, new or refreshed: a fresh link, and the one sent before stops working."""
    s = t.signups.c
    token_key = secrets.token_hex(16)
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
    found = conn.execute(select(s.id).where(s.email_hash == digest)).scalar()
    if found is None:
        conn.execute(insert(t.signups).values(email_hash=digest, **values))
    else:
        conn.execute(update(t.signups).where(s.id == found).values(**values))
    return PendingSignup(token_key, request.email, request.name, request.language, now, expires_at)


class Signups(Repository):
    """Sign-ups awaiting confirmation, and their confirmation."""

    def request(
        self,
        request: SignupRequest,
        secret: bytes,
        *,
        valid_for: dt.timedelta,
        resend_after: dt.timedelta = WINDOW,
    ) -> PendingSignup | KnownSubscriber | None:
        """What a sign-up asks for: the pending sign-up whose confirmation is to be sent now
        (created, or refreshed with a new link), or the person already on the list, to be told so;
        None when the address is suppressed (nothing is kept about it) or a message went to it
        less than `resend_after` (at most 10 minutes) ago: nothing changes."""
        now = self.db.now()
        key = email_key(request.email)
        digest = email_hash(secret, key)
        with self.db.write() as conn:
            conn.execute(delete(t.signups).where(t.signups.c.expires_at <= now))  # the expired ones go
            serialised(conn)
            if is_suppressed(conn, digest):
                return None
            sent = message_key(digest)
            if seen(conn, [sent], now, resend_after)[sent].count:
                return None
            record(conn, [sent], now)
            known = _on_the_list(conn, key, request.list_name)
            if known is not None:
                return KnownSubscriber(*known, message_key=sent)
            return _pending(conn, request, digest, now, now + valid_for)

    def not_sent(self, token_key: str) -> None:
        """The confirmation could not be sent: the person may try again at once."""
        s = t.signups.c
        with self.db.write() as conn:
            digest = conn.execute(select(s.email_hash).where(s.token_key == token_key)).scalar()
            if digest is not None:
                unrecord(conn, message_key(digest))
                conn.execute(update(t.signups).where(s.token_key == token_key).values(sent_at=None))

    def not_told(self, person: KnownSubscriber) -> None:
        """The message to someone already on the list could not be sent: they may try again at once."""
        with self.db.write() as conn:
            unrecord(conn, person.message_key)

    def pending(self, token_key: str) -> PendingSignup | None:
        s = t.signups.c
        with self.db.read() as conn:
            row = conn.execute(
                select(s.token_key, s.email, s.name, s.language, s.requested_at, s.expires_at).where(
                    s.token_key == token_key
                )
            ).first()
        if row is None:
            return None
        return PendingSignup(row[0], row[1], row[2], row[3], as_utc(row[4]), as_utc(row[5]))

    def confirm(self, token_key: str, secret: bytes) -> Confirmation:
        """The person active on the sign-up's list, with their consent recorded, and the sign-up
        gone, in one transaction. Whatever their status was (unsubscribed, bounced, complained),
        this is the fresh confirmation that may change it; a suppressed address stays out."""
        now = self.db.now()
        s, c = t.signups.c, t.subscribers.c
        with self.db.write() as conn:
            row = conn.execute(select(t.signups).where(s.token_key == token_key)).first()
            # the delete is the claim: of two confirmations at once, one finds nothing left to delete
            if row is None or conn.execute(delete(t.signups).where(s.id == row.id)).rowcount == 0:
                return Confirmation(UNKNOWN)
            if as_utc(row.expires_at) <= now:
                return Confirmation(EXPIRED)
            if is_suppressed(conn, row.email_hash):
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
            joined = list_id(conn, row.list_name, create=True, now=now)
            member = conn.execute(
                select(t.list_members.c.list_id).where(
                    t.list_members.c.list_id == joined, t.list_members.c.subscriber_id == subscriber_id
                )
            ).first()
            if member is None:
                conn.execute(insert(t.list_members).values(list_id=joined, subscriber_id=subscriber_id, added_at=now))
            insert_event(conn, now, kind="subscribe", source="web", subscriber_id=subscriber_id)
            person = conn.execute(select(*SUBSCRIBER_COLUMNS).where(c.id == subscriber_id)).one()
        self.db.flush_erased()  # the sign-up's row held the address: no copy of it stays in free pages
        return Confirmation(CONFIRMED, Subscriber(*person))
