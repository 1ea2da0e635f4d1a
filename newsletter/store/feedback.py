"""Feedback in the store: SES events and the bounce mailbox's messages matched to deliveries
and acted on under the feedback policy, and the unsubscribes and resubscribes of the web pages."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.addresses import email_key
from newsletter.domain import Subscriber
from newsletter.feedback.bounces import MailEvent
from newsletter.feedback.policy import SOFT_BOUNCE_TYPES, FeedbackPolicy
from newsletter.feedback.ses_events import FeedbackEvent
from newsletter.keys import email_hash
from newsletter.store.database import as_utc, redact
from newsletter.store.subscribers import SUBSCRIBER_COLUMNS, SubscriberStore


@dataclass
class FeedbackOutcome:
    recorded: int = 0
    duplicates: int = 0
    unknown: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    repeated_message: bool = False


class FeedbackStore(SubscriberStore):
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
        now = self.now()
        with self.engine.begin() as conn:
            if message_key is not None:
                seen = conn.execute(
                    select(t.processed_messages.c.id).where(t.processed_messages.c.message_key == message_key)
                ).first()
                if seen is not None:
                    outcome.repeated_message = True
                    outcome.duplicates = len(events)
                    return outcome
                conn.execute(insert(t.processed_messages).values(message_key=message_key, received_at=now))
            for event in events:
                if conn.execute(
                    select(t.feedback_events.c.id).where(t.feedback_events.c.event_key == event.key)
                ).first():
                    outcome.duplicates += 1
                    continue
                delivery = None
                if event.ses_message_id:
                    delivery = conn.execute(
                        select(
                            t.deliveries.c.id, t.deliveries.c.campaign_id, t.subscribers.c.id, t.subscribers.c.email_key
                        )
                        .select_from(
                            t.deliveries.outerjoin(t.subscribers, t.deliveries.c.subscriber_id == t.subscribers.c.id)
                        )
                        .where(t.deliveries.c.provider_message_id == event.ses_message_id)
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
                    insert(t.feedback_events).values(
                        event_key=event.key,
                        kind=event.kind,
                        source=source,
                        ses_message_id=event.ses_message_id,
                        campaign_id=delivery[1] if delivery else None,
                        delivery_id=delivery[0] if delivery else None,
                        subscriber_id=subscriber_id,
                        recipient_hash=email_hash(secret, email_key(event.recipient)) if event.recipient else None,
                        bounce_type=event.bounce_type,
                        complaint_type=event.complaint_type,
                        detail=redact(event.detail),
                        occurred_at=as_utc(event.occurred_at),
                        received_at=now,
                    )
                )
                outcome.recorded += 1
                if subscriber_id is None or delivery is None:
                    continue
                person: int = subscriber_id
                verdict = policy.verdict(event, lambda: self._soft_bounce_campaigns(conn, person, policy))  # noqa: B023 - called at once
                if verdict is None:
                    continue
                self._set_status(conn, subscriber_id, verdict.status, from_states=verdict.from_states)
                self._suppress(conn, delivery[3], verdict.reason, secret)
                if verdict.status == d.BOUNCED:
                    outcome.bounced += 1
                else:
                    outcome.complained += 1
        return outcome

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
        report quotes. Without one, an event is matched through the Message-ID it quotes, and
        only when its recipient is that delivery's address; anything else is recorded as unknown.
        """
        outcome = FeedbackOutcome()
        now = self.now()
        with self._write_lock, self.engine.begin() as conn:
            processed = t.processed_messages.c
            if conn.execute(select(processed.id).where(processed.message_key == message_key)).first():
                outcome.repeated_message, outcome.duplicates = True, len(events)
                return outcome
            conn.execute(insert(t.processed_messages).values(message_key=message_key, received_at=now))
            for index, event in enumerate(events):
                delivery = self._mail_delivery(conn, event, delivery_id)
                conn.execute(
                    insert(t.feedback_events).values(
                        event_key=hashlib.sha256(f"{message_key}:{index}".encode()).hexdigest(),
                        kind=event.kind,
                        source="mailbox",
                        ses_message_id=(event.original_id or "")[:300] or None,
                        campaign_id=delivery[1] if delivery else None,
                        delivery_id=delivery[0] if delivery else None,
                        subscriber_id=delivery[2] if delivery else None,
                        recipient_hash=email_hash(secret, email_key(event.recipient)) if event.recipient else None,
                        bounce_type=event.bounce_type,
                        complaint_type=event.complaint_type,
                        detail=redact(event.detail),
                        occurred_at=as_utc(occurred_at),
                        received_at=now,
                    )
                )
                outcome.recorded += 1
                if delivery is None:
                    outcome.unknown += 1
                    continue
                person = delivery[2]
                if person is None:  # forgotten: the delivery still counts, anonymous
                    continue
                if event.kind == "unsubscribe":
                    outcome.unsubscribed += self._set_status(conn, person, d.UNSUBSCRIBED, from_states=(d.ACTIVE,))
                    continue
                verdict = policy.verdict(event, lambda: self._soft_bounce_campaigns(conn, person, policy))  # noqa: B023 - called at once
                if verdict is None:
                    continue
                if self._set_status(conn, person, verdict.status, from_states=verdict.from_states):
                    outcome.bounced += verdict.status == d.BOUNCED
                    outcome.complained += verdict.status == d.COMPLAINED
                self._suppress(conn, delivery[3], verdict.reason, secret)
        return outcome

    def _mail_delivery(self, conn: Connection, event: MailEvent, delivery_id: int | None):
        """(delivery, campaign, subscriber, address key) the event is about, or None."""
        query = select(
            t.deliveries.c.id, t.deliveries.c.campaign_id, t.subscribers.c.id, t.subscribers.c.email_key
        ).select_from(t.deliveries.outerjoin(t.subscribers, t.deliveries.c.subscriber_id == t.subscribers.c.id))
        if delivery_id is not None:
            return conn.execute(query.where(t.deliveries.c.id == delivery_id)).first()
        if not event.original_id or not event.recipient:
            return None
        found = conn.execute(query.where(t.deliveries.c.provider_message_id == event.original_id[:300])).first()
        return found if found is not None and found[3] == email_key(event.recipient) else None

    def _soft_bounce_campaigns(self, conn: Connection, subscriber_id: int, policy: FeedbackPolicy) -> int:
        cutoff = policy.window_start(as_utc(self.now()))
        return conn.execute(
            select(func.count(func.distinct(t.feedback_events.c.campaign_id))).where(
                and_(
                    t.feedback_events.c.subscriber_id == subscriber_id,
                    t.feedback_events.c.kind == "bounce",
                    t.feedback_events.c.bounce_type.in_(SOFT_BOUNCE_TYPES),
                    t.feedback_events.c.occurred_at >= cutoff,
                    t.feedback_events.c.campaign_id.is_not(None),
                )
            )
        ).scalar_one()

    def _set_status(self, conn: Connection, subscriber_id: int, status: str, *, from_states: tuple[str, ...]) -> bool:
        return (
            conn.execute(
                update(t.subscribers)
                .where(and_(t.subscribers.c.id == subscriber_id, t.subscribers.c.status.in_(from_states)))
                .values(status=status, updated_at=self.now())
            ).rowcount
            > 0
        )

    def unsubscribe(self, token_key: str, campaign_id: int | None) -> tuple[Subscriber | None, bool]:
        """One-click unsubscribe: idempotent; returns the person and whether anything changed."""
        return self._web_change(token_key, campaign_id, d.UNSUBSCRIBED, (d.ACTIVE,), "unsubscribe")

    def resubscribe(self, token_key: str, campaign_id: int | None) -> tuple[Subscriber | None, bool]:
        """Undo an unsubscribe made by mistake; a bounce or complaint is not undone here."""
        return self._web_change(token_key, campaign_id, d.ACTIVE, (d.UNSUBSCRIBED,), "resubscribe")

    def _web_change(self, token_key, campaign_id, status, from_states, kind):
        now = self.now()
        c = t.subscribers.c
        with self._write_lock, self.engine.begin() as conn:
            # the common case in one statement: change the status and read the person back
            row = conn.execute(
                update(t.subscribers)
                .where(and_(c.token_key == token_key, c.status.in_(from_states)))
                .values(status=status, updated_at=now)
                .returning(*SUBSCRIBER_COLUMNS)
            ).first()
            if row is None:  # unknown token, or nothing to change
                row = conn.execute(select(*SUBSCRIBER_COLUMNS).where(c.token_key == token_key)).first()
                return (Subscriber(*row) if row else None), False
            subscriber = Subscriber(*row)
            # linked to the delivery of the campaign whose link was used (found in the same
            # statement), so the report still counts it after the person is forgotten
            d = t.deliveries.c
            delivery = and_(d.campaign_id == (campaign_id or 0), d.subscriber_id == subscriber.id)
            conn.execute(
                insert(t.feedback_events).values(
                    event_key=secrets.token_hex(16),
                    kind=kind,
                    source="web",
                    campaign_id=select(d.campaign_id).where(delivery).scalar_subquery(),
                    delivery_id=select(d.id).where(delivery).scalar_subquery(),
                    subscriber_id=subscriber.id,
                    occurred_at=now,
                    received_at=now,
                )
            )
        return subscriber, True
