"""The ledger on SQLite and PostgreSQL: claims never overlap, in-flight work turns uncertain."""

from __future__ import annotations

import datetime as dt
import threading

from newsletter import domain as d
from newsletter.store import tables as s
from newsletter.domain import NewSubscriber
from newsletter.store import Store
from store_helpers import claim, record_results

SECRET = b"k" * 32


def campaign_with(store: Store, people: int):
    store.subscribers.import_rows([NewSubscriber(f"p{i}@example.org", "", "ar") for i in range(people)], "main", SECRET)
    campaign, skipped = store.campaigns.create(
        slug="x", lists=["main"], content_hash="h", layout="bilingual", provider="outbox",
        variant_for=lambda language: "bilingual", secret=SECRET,
    )
    return campaign


def test_concurrent_claims_never_overlap(store_url):
    store = Store.open(store_url)
    campaign = campaign_with(store, 600)
    got: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    def claimer(name: str) -> None:
        other = Store.open(store_url, check=False)
        while True:
            claimed = claim(other, campaign.id, 7, name)
            if not claimed:
                return
            got[name].extend(c.id for c in claimed)
            record_results(other, [(c.id, f"<{c.id}@x>") for c in claimed])

    threads = [threading.Thread(target=claimer, args=(name,)) for name in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = got["a"] + got["b"] + got["c"]
    assert len(everything) == 600 and len(set(everything)) == 600
    assert store.ledger.delivery_counts(campaign.id)[d.SENT] == 600


def test_in_flight_of_a_dead_sender_becomes_uncertain_only_after_its_lease(store_url):
    now = [dt.datetime(2022, 12, 20, 9, 0, tzinfo=dt.timezone.utc)]
    store = Store.open(store_url, now=lambda: now[0])
    campaign = campaign_with(store, 10)
    store.ledger.register_sender(campaign.id, "alive")
    store.ledger.register_sender(campaign.id, "dead")
    mine = claim(store, campaign.id, 3, "alive")
    theirs = claim(store, campaign.id, 4, "dead")
    assert len(mine) == 3 and len(theirs) == 4
    now[0] += dt.timedelta(seconds=8)
    assert store.ledger.heartbeat("alive", campaign.id, lease=10) == 2
    assert store.ledger.recover_in_flight(campaign.id, lease=10) == 0  # both within their lease
    now[0] += dt.timedelta(seconds=5)
    assert store.ledger.heartbeat("alive", campaign.id, lease=10) == 1  # "dead" is 13 s silent
    assert store.ledger.recover_in_flight(campaign.id, lease=10) == 4
    counts = store.ledger.delivery_counts(campaign.id)
    assert counts[d.UNCERTAIN] == 4 and counts[d.SENDING] == 3 and counts[d.PENDING] == 3
    # alone (a plain resume), every delivery left sending belongs to a dead run
    assert store.ledger.recover_in_flight(campaign.id) == 3


def test_results_and_released_work(store_url):
    store = Store.open(store_url)
    campaign = campaign_with(store, 5)
    claimed = claim(store, campaign.id, 5, "w")
    ids = [c.id for c in claimed]
    next_claim = store.ledger.record_and_claim(
        campaign.id, "w", 5, sent=[(ids[0], "<a@x>")], failed=[(ids[1], "550 no such user")],
        uncertain=[(ids[2], "connection lost")], released=[ids[3], ids[4]],
    )
    assert sorted(c.id for c in next_claim) == [ids[3], ids[4]]  # released, then claimed again
    counts = store.ledger.delivery_counts(campaign.id)
    assert (counts[d.SENT], counts[d.FAILED], counts[d.UNCERTAIN], counts[d.SENDING]) == (1, 1, 1, 2)
    assert store.ledger.deliveries_in(campaign.id, d.FAILED)[0][1:] == ("p1@example.org", "550 no such user")
