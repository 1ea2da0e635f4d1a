"""One-click unsubscribes that arrive together are recorded together (newsletter/web/batches.py
gathers them, Feedback.unsubscribe_many writes them in one transaction), each answered as if it
had been alone: the person and whether this request changed them, an event per change linked to
the delivery of the campaign whose link was used, nothing for a link that leads nowhere."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from sqlalchemy import event, select

from newsletter import domain as d
from newsletter.domain import NewSubscriber
from newsletter.store import Store
from newsletter.store import tables as t
from newsletter.web.batches import MAX_BATCH, Batches

SECRET = b"k" * 32


def test_items_that_arrive_together_are_done_in_one_call_each_answered_with_its_own_result():
    calls: list[list[int]] = []

    def work(items):
        calls.append(list(items))
        return [item * 10 for item in items]

    async def main():
        batches = Batches()
        first = await asyncio.gather(*(batches.run(work, n) for n in range(5)))
        many = await asyncio.gather(*(batches.run(work, n) for n in range(MAX_BATCH + 1)))
        return first, many

    first, many = asyncio.run(main())
    assert first == [0, 10, 20, 30, 40] and many == [n * 10 for n in range(MAX_BATCH + 1)]
    assert [len(call) for call in calls] == [5, MAX_BATCH, 1]  # at most MAX_BATCH a call, in arrival order


def test_a_failed_call_is_every_waiting_requests_error_and_the_next_ones_are_done():
    def work(items):
        if "bad" in items:
            raise RuntimeError("the store is down")
        return items

    async def main():
        batches = Batches()
        failed = await asyncio.gather(*(batches.run(work, item) for item in ("a", "bad")), return_exceptions=True)
        return failed, await batches.run(work, "c")

    failed, after = asyncio.run(main())
    assert [type(answer) for answer in failed] == [RuntimeError, RuntimeError] and after == "c"


@pytest.fixture
def store(store_url):
    store = Store.open(store_url)
    people = [NewSubscriber(f"p{n}@example.org", f"P{n}", "en") for n in range(4)]
    store.subscribers.import_rows(people, "main", SECRET)
    store.campaigns.create(
        slug="issue", lists=["main"], content_hash="h", layout="bilingual", provider="outbox",
        variant_for=lambda language: "bilingual", secret=SECRET,
    )
    yield store
    store.close()


def test_a_batch_of_links_is_answered_link_by_link_in_one_transaction(store):
    campaign = store.campaigns.all()[0].id
    key = {n: store.subscribers.by_email(f"p{n}@example.org").token_key for n in range(4)}
    store.feedback.unsubscribe(key[3], campaign)  # already gone before the batch
    statements: list[str] = []
    event.listen(store.db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    links = [(key[0], campaign), (key[1], 0), (key[0], campaign), (secrets.token_hex(16), campaign),
             (key[3], campaign), (secrets.token_hex(16)[:31], 0)]
    answers = store.feedback.unsubscribe_many(links)
    people = [(s.email if s else None, s.status if s else None, changed) for s, changed in answers]
    assert people == [
        ("p0@example.org", d.UNSUBSCRIBED, True),
        ("p1@example.org", d.UNSUBSCRIBED, True),
        ("p0@example.org", d.UNSUBSCRIBED, False),  # the same link twice: changed once
        (None, None, False),
        ("p3@example.org", d.UNSUBSCRIBED, False),
        (None, None, False),
    ]
    assert len([s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT"))]) == 4
    fe, dl = t.feedback_events.c, t.deliveries.c
    with store.db.read() as conn:
        events = conn.execute(
            select(fe.subscriber_id, fe.campaign_id, fe.delivery_id, fe.kind, fe.source).order_by(fe.id)
        ).all()
        delivery = dict(conn.execute(select(dl.subscriber_id, dl.id).where(dl.campaign_id == campaign)).all())
    person = {n: store.subscribers.by_email(f"p{n}@example.org").id for n in range(4)}
    assert [tuple(e) for e in events] == [
        (person[3], campaign, delivery[person[3]], "unsubscribe", "web"),
        (person[0], campaign, delivery[person[0]], "unsubscribe", "web"),
        (person[1], None, None, "unsubscribe", "web"),  # a link of no campaign: no delivery to count it against
    ]
    assert store.subscribers.by_email("p2@example.org").status == d.ACTIVE
