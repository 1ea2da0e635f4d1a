"""Feedback in the store: SES events and the bounce mailbox's messages matched to deliveries
and acted on under the feedback policy, and the unsubscribes and resubscribes of the web pages.
`insert_event` is the one writer of a feedback event."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.domain import Subscriber
from newsletter.feedback.bounces import RECIPIENT_LIMIT, MailEvent
from newsletter.feedback.policy import SOFT_BOUNCE_TYPES, FeedbackPolicy, Verdict
from newsletter.feedback.reasons import NOT_THE_RECIPIENT
from newsletter.feedback.ses_events import FeedbackEvent
from newsletter.feedback.sink import FeedbackOutcome
from newsletter.keys import email_hash, email_key
from newsletter.store.database import Repository, as_utc, redact, suppress
from newsletter.store.subscribers import SUBSCRIBER_COLUMNS


def insert_event(conn: Connection, now: dt.datetime, *, kind: str, source: str, **columns: Any) -> None:
    """Record one feedback event (`event_key` a fresh random one unless given; `occurred_at` now
    unless given)."""
    insert_events(conn, now, kind=kind, source=source, rows=[columns])


def insert_events(
    conn: Connection, now: dt.datetime, *, kind: str, source: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Record feedback events of one kind, one statement for all (each row's columns as
    `insert_event` takes them; every row with the same columns)."""
    values = [
        {
            "event_key": secrets.token_hex(16),
            "occurred_at": now,
            **columns,
            "kind": kind,
            "source": source,
            "received_at": now,
        }
        for columns in rows
    ]
    conn.execute(_INSERT_EVENT, values)


_INSERT_EVENT = insert(t.feedback_events)


class Feedback(Repository):
    """What comes back from a send, recorded and acted on; the web pages' unsubscribes."""

    def now(self) -> dt.datetime:
        return self.db.now()

    def apply_feedback(
        self,
        events: Sequence[FeedbackEvent],
        *,
        message_key: str | None,
        source: str,
        policy: FeedbackPolicy,
        secret: bytes,
    ) -> FeedbackOutcome:
        """Record SES feedback events and act on them, all in one transaction.

        Idempotent: a message seen before (by SNS MessageId) or an event seen before (by its
        key) changes nothing. Events are matched to a delivery by the SES message id stored at
        send time, and to the person only when the recipient is that delivery's address
        (compared case-insensitively); anything else is recorded as unknown and ignored.
        """
        outcome = FeedbackOutcome()
        now = self.db.now()
        with self.db.write() as conn:
            if message_key is not None and _seen(conn, message_key, now):
                outcome.repeated_message, outcome.duplicates = True, len(events)
                return outcome
            for event in events:
                if conn.execute(
                    select(t.feedback_events.c.id).where(t.feedback_events.c.event_key == event.key)
                ).first():
                    outcome.duplicates += 1
                    continue
                self._ses_event(conn, now, event, source, policy, secret, outcome)
        return outcome

    def _ses_event(self, conn, now, event: FeedbackEvent, source, policy, secret, outcome: FeedbackOutcome) -> None:
        delivery = _delivery(conn, provider_message_id=event.ses_message_id) if event.ses_message_id else None
        person = None
        if delivery is not None and event.recipient and delivery[3] == email_key(event.recipient):
            person = delivery[2]
        if event.recipient and person is None:
            outcome.unknown += 1
            if delivery is not None and delivery[3] is not None:
                # an address this message was not sent to: not this delivery's feedback, so
                # not counted against its campaign (a forgotten person's stays, anonymous)
                delivery = None
        _insert_reported(
            conn, now, event, source, event.key, event.ses_message_id, delivery, person, secret, event.occurred_at
        )
        outcome.recorded += 1
        if person is None or delivery is None:
            return
        verdict = policy.verdict(event, lambda: self._soft_bounce_campaigns(conn, person, policy))
        if verdict is not None:
            self._act(conn, person, delivery[3], verdict, secret)
            if verdict.status == d.BOUNCED:
                outcome.bounced += 1
            else:
                outcome.complained += 1

    def apply_mail(
        self,
        events: Sequence[MailEvent],
        *,
        message_key: str,
        delivery_id: int | None,
        occurred_at: dt.datetime,
        policy: FeedbackPolicy,
        secret: bytes,
    ) -> FeedbackOutcome:
        """Act on one message of the bounce mailbox, all in one transaction; the same message
        (by `message_key`) a second time changes nothing.

        `delivery_id` comes from a verified token and names the delivery whatever address the
        report quotes: every event is about it. Nothing else leads to a person (a quoted
        Message-ID travels in every reply and forwarded letter): without `delivery_id` the
        events are recorded as unknown. At most RECIPIENT_LIMIT events are stored; the rest are
        counted in `beyond_limit`.
        """
        outcome = FeedbackOutcome()
        kept = list(events[:RECIPIENT_LIMIT])
        outcome.beyond_limit = len(events) - len(kept)
        now = self.db.now()
        with self.db.write() as conn:
            if _seen(conn, message_key, now):
                outcome.repeated_message, outcome.duplicates = True, len(kept)
                return outcome
            delivery = None
            if delivery_id is not None:
                delivery = conn.execute(_delivery_query().where(t.deliveries.c.id == delivery_id)).first()
            person = delivery[2] if delivery else None
            for index, event in enumerate(kept):
                key = hashlib.sha256(f"{message_key}:{index}".encode()).hexdigest()
                original = (event.original_id or "")[:300] or None
                _insert_reported(conn, now, event, "mailbox", key, original, delivery, person, secret, occurred_at)
            outcome.recorded = len(kept)
            if delivery is None:
                outcome.unknown = len(kept)
            elif person is not None:  # None: forgotten; the delivery still counts, anonymous
                # one verdict per kind of event: a report listing the same failure many times acts once
                for event in {(e.kind, e.bounce_type, e.reason, e.complaint_type): e for e in kept}.values():
                    self._mail_event(conn, event, delivery, policy, secret, outcome)
        return outcome

    def _mail_event(self, conn, event: MailEvent, delivery: Row, policy, secret, outcome: FeedbackOutcome) -> None:
        person = delivery[2]
        if event.kind == "unsubscribe":
            outcome.unsubscribed += self._set_status(conn, person, d.UNSUBSCRIBED, from_states=(d.ACTIVE,))
            return
        verdict = policy.verdict(event, lambda: self._soft_bounce_campaigns(conn, person, policy))
        if verdict is not None and self._act(conn, person, delivery[3], verdict, secret):
            outcome.bounced += verdict.status == d.BOUNCED
            outcome.complained += verdict.status == d.COMPLAINED

    def _act(self, conn: Connection, person: int, key: str, verdict: Verdict, secret: bytes) -> bool:
        """The person's status changed (whether it did is returned) and the address suppressed."""
        changed = self._set_status(conn, person, verdict.status, from_states=verdict.from_states)
        suppress(conn, email_hash(secret, key), verdict.reason, self.db.now())
        return changed

    def _soft_bounce_campaigns(self, conn: Connection, subscriber_id: int, policy: FeedbackPolicy) -> int:
        cutoff = policy.window_start(as_utc(self.db.now()))
        fe = t.feedback_events.c
        return conn.execute(
            select(func.count(func.distinct(fe.campaign_id))).where(
                and_(
                    fe.subscriber_id == subscriber_id,
                    fe.kind == "bounce",
                    fe.bounce_type.in_(SOFT_BOUNCE_TYPES),
                    or_(fe.reason.is_(None), fe.reason.not_in(sorted(NOT_THE_RECIPIENT))),  # about us: not theirs
                    fe.occurred_at >= cutoff,
                    fe.campaign_id.is_not(None),
                )
            )
        ).scalar_one()

    def _set_status(self, conn: Connection, subscriber_id: int, status: str, *, from_states: tuple[str, ...]) -> bool:
        query = update(t.subscribers).where(
            and_(t.subscribers.c.id == subscriber_id, t.subscribers.c.status.in_(from_states))
        )
        return conn.execute(query.values(status=status, updated_at=self.db.now())).rowcount > 0

    def unsubscribe(self, token_key: str, campaign_id: int | None) -> tuple[Subscriber | None, bool]:
        """One-click unsubscribe: idempotent; returns the person and whether anything changed."""
        return self.unsubscribe_many([(token_key, campaign_id)])[0]

    def unsubscribe_many(self, links: Sequence[tuple[str, int | None]]) -> list[tuple[Subscriber | None, bool]]:
        """The one-click unsubscribes of many links (token key, campaign) in one write transaction:
        for each, as `unsubscribe` answers it. The web server's concurrent ones share a commit."""
        return self._web_changes(links, d.UNSUBSCRIBED, (d.ACTIVE,), "unsubscribe")

    def resubscribe(self, token_key: str, campaign_id: int | None) -> tuple[Subscriber | None, bool]:
        """Undo an unsubscribe made by mistake; a bounce or complaint is not undone here."""
        return self._web_changes([(token_key, campaign_id)], d.ACTIVE, (d.UNSUBSCRIBED,), "resubscribe")[0]

    def _web_changes(self, links, status, from_states, kind) -> list[tuple[Subscriber | None, bool]]:
        """Whatever the batch's size, four statements: the changes (UPDATE … RETURNING the people
        changed), the people not changed, the deliveries the links came from, the events."""
        now = self.db.now()
        keys = sorted({key for key, _campaign in links})
        with self.db.write() as conn:
            changed = {
                row.token_key: Subscriber(*row)
                for row in conn.execute(
                    _CHANGE_STATUS, {"keys": keys, "from_states": from_states, "new_status": status, "changed_at": now}
                )
            }
            found = dict(changed)
            if rest := [key for key in keys if key not in changed]:  # unknown, forgotten, or nothing to change
                found.update((row.token_key, Subscriber(*row)) for row in conn.execute(_PEOPLE, {"keys": rest}))
            answers, events = [], []
            for key, campaign_id in links:
                subscriber = found.get(key)
                first = changed.pop(key, None) is not None  # the same link twice in a batch changes once
                answers.append((subscriber, first))
                if first and subscriber is not None:
                    events.append((subscriber.id, campaign_id or 0))
            if events:
                _insert_web_events(conn, now, kind, events)
        return answers


# The web changes' statements, built once: only their values change from one batch to the next.
_SC = t.subscribers.c
_CHANGE_STATUS = (
    update(t.subscribers)
    .where(
        _SC.token_key.in_(bindparam("keys", expanding=True)), _SC.status.in_(bindparam("from_states", expanding=True))
    )
    .values(status=bindparam("new_status"), updated_at=bindparam("changed_at"))
    .returning(*SUBSCRIBER_COLUMNS)
)
_PEOPLE = select(*SUBSCRIBER_COLUMNS).where(_SC.token_key.in_(bindparam("keys", expanding=True)))
_DELIVERIES = select(t.deliveries.c.campaign_id, t.deliveries.c.subscriber_id, t.deliveries.c.id).where(
    t.deliveries.c.subscriber_id.in_(bindparam("people", expanding=True)),
    t.deliveries.c.campaign_id.in_(bindparam("campaigns", expanding=True)),
)


def _insert_web_events(conn: Connection, now: dt.datetime, kind: str, events: list[tuple[int, int]]) -> None:
    """An event per (person, campaign), linked to the delivery of the campaign whose link was used
    (when there is one), so the report still counts it after the person is forgotten."""
    people, campaigns = sorted({p for p, _c in events}), sorted({c for _p, c in events})
    delivery = {
        (c, p): row_id for c, p, row_id in conn.execute(_DELIVERIES, {"people": people, "campaigns": campaigns})
    }
    rows = []
    for person, campaign_id in events:
        delivery_id = delivery.get((campaign_id, person))
        rows.append(
            {"subscriber_id": person, "campaign_id": campaign_id if delivery_id else None, "delivery_id": delivery_id}
        )
    insert_events(conn, now, kind=kind, source="web", rows=rows)


def _seen(conn: Connection, message_key: str, now: dt.datetime) -> bool:
    """Whether the message was acted on before; if not, it is noted as acted on now."""
    processed = t.processed_messages.c
    if conn.execute(select(processed.id).where(processed.message_key == message_key)).first():
        return True
    conn.execute(insert(t.processed_messages).values(message_key=message_key, received_at=now))
    return False


def _delivery_query():
    dl, s = t.deliveries.c, t.subscribers.c
    return select(dl.id, dl.campaign_id, s.id, s.email_key).select_from(
        t.deliveries.outerjoin(t.subscribers, dl.subscriber_id == s.id)
    )


def _delivery(conn: Connection, *, provider_message_id: str) -> Row | None:
    """(delivery, campaign, subscriber, address key) sent with this provider message id."""
    return conn.execute(_delivery_query().where(t.deliveries.c.provider_message_id == provider_message_id)).first()


def _insert_reported(conn, now, event, source, key, message_id, delivery, person, secret, occurred_at) -> None:
    """A reported event (SES or the mailbox), linked to its delivery when it has one."""
    insert_event(
        conn,
        now,
        kind=event.kind,
        source=source,
        event_key=key,
        ses_message_id=message_id,
        campaign_id=delivery[1] if delivery else None,
        delivery_id=delivery[0] if delivery else None,
        subscriber_id=person,
        recipient_hash=email_hash(secret, email_key(event.recipient)) if event.recipient else None,
        bounce_type=event.bounce_type,
        reason=event.reason,
        complaint_type=event.complaint_type,
        detail=redact(event.detail),
        occurred_at=as_utc(occurred_at),
    )
