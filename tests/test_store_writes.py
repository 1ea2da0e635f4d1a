"""Every write transaction of the store on SQLite holds its writer lock (`Database.write`): each
repository's writes are run with a check on the engine that notes any write outside it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import insert

import newsletter.store
from newsletter import domain as d
from newsletter.domain import NewSubscriber
from newsletter.feedback.bounces import MailEvent
from newsletter.feedback.policy import FeedbackPolicy
from newsletter.feedback.ses_events import FeedbackEvent
from newsletter.store import Store
from newsletter.store import tables as t
from newsletter.store.signups import SignupRequest
from store_helpers import unlocked_writes

OLD = "old-store-key-0123456789-abcdefghijklmnopqrstuvwxyz-old"
NEW = "new-store-key-0123456789-abcdefghijklmnopqrstuvwxyz-new"
DAY = dt.timedelta(days=1)


def _people(store: Store, secret: bytes) -> None:
    rows = [NewSubscriber(f"p{n}@example.org", f"P{n}", "en") for n in range(4)]
    store.subscribers.import_rows(rows, "main", secret)
    person = store.subscribers.by_email("p0@example.org")
    assert person is not None
    store.subscribers.set_language(person.token_key, "ar")
    store.subscribers.remove_from_lists("p1@example.org", "main")
    store.subscribers.forget("p2@example.org", secret)


def _campaign(store: Store, secret: bytes) -> d.Campaign:
    campaign, _ = store.campaigns.create(
        slug="issue",
        lists=["main"],
        content_hash="x",
        layout="bilingual",
        provider="outbox",
        variant_for=lambda language: language,
        secret=secret,
    )
    store.campaigns.add_newcomers(campaign, variant_for=lambda language: language, secret=secret)
    ledger = store.ledger
    ledger.register_sender(campaign.id, "w1")
    ledger.heartbeat("w1", campaign.id, 60)
    claimed = ledger.record_and_claim(campaign.id, "w1", 1, sent=[])
    ledger.record_and_claim(campaign.id, "w1", 1, sent=[(c.id, f"<m{c.id}>") for c in claimed])
    ledger.recover_in_flight(campaign.id)
    ledger.requeue(campaign.id, (d.UNCERTAIN,))
    ledger.stop_sender("w1")
    return campaign


def _feedback(store: Store, secret: bytes, campaign: d.Campaign) -> None:
    now = store.db.now()
    policy = FeedbackPolicy()
    event = FeedbackEvent("bounce", "<m1>", "p0@example.org", now, None, "Permanent", "General", None, "550", {}, "event")
    store.feedback.apply_feedback([event], message_key="sns:1", source="sns", policy=policy, secret=secret)
    mail = MailEvent("unsubscribe", "p3@example.org", original_id="<m2>")
    store.feedback.apply_mail([mail], message_key="mail:1", delivery_id=None, occurred_at=now, policy=policy, secret=secret)
    person = store.subscribers.by_email("p3@example.org")
    assert person is not None
    store.feedback.resubscribe(person.token_key, campaign.id)
    store.feedback.unsubscribe(person.token_key, campaign.id)
    store.campaigns.set_state(campaign.id, d.CAMPAIGN_CANCELLED, "stopped")
    store.campaigns.cancel_pending(campaign.id)


def _signup_and_archive(store: Store, secret: bytes) -> None:
    request = SignupRequest("new@example.org", "New", "en", "main", "v1", "sign-up form")
    pending = store.signups.request(request, secret, resend_after=DAY, valid_for=DAY)
    assert pending is not None
    store.signups.not_sent(pending.token_key)
    pending = store.signups.request(request, secret, resend_after=DAY, valid_for=DAY)
    assert pending is not None
    assert store.signups.confirm(pending.token_key, secret).outcome == "confirmed"
    files = {"index.html": ("text/html", b"<p>")}
    store.archive.publish("issue", dt.date(2022, 12, 1), {"en": {"title": "T"}}, files, replace=False)
    store.archive.publish("issue", dt.date(2022, 12, 1), {"en": {"title": "T"}}, files, replace=True)


def test_every_write_holds_the_writer_lock(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    try:
        with unlocked_writes(store) as found:
            secret = store.keys.data_key({"NEWSLETTER_SECRET_KEY": OLD})
            assert store.keys.rotate({"NEWSLETTER_SECRET_KEY": NEW, "NEWSLETTER_OLD_SECRET_KEYS": OLD})
            _people(store, secret)
            campaign = _campaign(store, secret)
            _feedback(store, secret, campaign)
            _signup_and_archive(store, secret)
        assert found == []
    finally:
        store.close()


def test_a_write_outside_the_lock_is_noticed(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    try:
        with unlocked_writes(store) as found:
            with store.db.engine.begin() as conn:
                conn.execute(insert(t.lists).values(name="sneaky", created_at=store.db.now()))
            with store.db.write() as conn:
                conn.execute(insert(t.lists).values(name="proper", created_at=store.db.now()))
        assert len(found) == 1 and found[0].startswith("INSERT INTO lists"), found
    finally:
        store.close()


def test_only_database_write_begins_a_transaction():
    """No repository opens a write transaction of its own (the schema's upgrade, in database.py,
    runs before any repository and outside the writer lock's reach)."""
    store_dir = Path(newsletter.store.__file__).parent
    begins = {path.name for path in store_dir.glob("*.py") if ".begin()" in path.read_text(encoding="utf-8")}
    assert begins == {"database.py"}, begins
