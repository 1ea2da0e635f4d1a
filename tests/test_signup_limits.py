"""The sign-up form's limits: what a post is counted under (pure, hostile input via Hypothesis),
what the counts decide, the store's counters on SQLite and PostgreSQL (two Store objects, each
with its own engine and writer lock, as two serve processes have), a flood from one IPv6 /64
through a real uvicorn server to an aiosmtpd sink, and what a provider's refusal leaves in the
log. The same flood through Caddy with real IPv6 source addresses, two real serve processes and
the answer times are in tests/test_signup_trials.py."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import threading
import time

import httpx
import pytest
from conftest import SECRET, Project
from hypothesis import given
from hypothesis import strategies as st
from serve_process import Clock, post, signup_config
from smtp_sink import smtp_sink  # noqa: F401 - fixture
from sqlalchemy import select
from uvicorn_server import running

from newsletter.audience.signup import SignupForm
from newsletter.domain import NewSubscriber
from newsletter.sending.confirmations import Signups, without_person
from newsletter.sending.providers.base import SendError
from newsletter.store import Store
from newsletter.store import tables as t
from newsletter.store.limits import WINDOW, Seen
from newsletter.web.limits import ADMITTED, NOT_AN_ADDRESS, QUIET, REFUSED, Keys, RateLimit, mailbox_of, network_of
from newsletter.web.public import create_app

SECRET_BYTES = SECRET.encode()


def wait_for(sink, count: int, timeout: float = 10) -> list:
    deadline = time.monotonic() + timeout
    while sink.count() < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return sink.received()


# --- what a post is counted under ----------------------------------------------------------------


@pytest.mark.parametrize(("client", "network"), [
    ("203.0.113.7", "203.0.113.0/24"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.200", "203.0.113.0/24"),  # an IPv4 client on a dual-stack socket
    ("fe80::1%eth0", "fe80::/64"),
    ("[2001:db8::5]:443", "2001:db8::/64"),
    ("203.0.113.7:443", "203.0.113.0/24"),
    ("testclient", NOT_AN_ADDRESS),  # starlette's test client
    ("", NOT_AN_ADDRESS),
    ("evil-1", NOT_AN_ADDRESS),  # made-up names are all one client
])
def test_a_client_is_counted_as_its_network(client, network):
    assert network_of(client) == network


HALF = st.integers(0, 2**64 - 1)


@given(st.integers(1, 2**64 - 2), HALF, HALF)
def test_every_address_of_one_ipv6_64_is_one_client_and_the_next_64_another(prefix, one, two):
    first, second = (str(ipaddress.IPv6Address(prefix << 64 | host)) for host in (one, two))
    assert network_of(first) == network_of(second)
    assert network_of(str(ipaddress.IPv6Address((prefix + 1) << 64 | one))) != network_of(first)


@given(st.integers(0, 2**24 - 1), st.integers(0, 255), st.integers(0, 255))
def test_every_address_of_one_ipv4_24_is_one_client_also_when_mapped_into_ipv6(block, one, two):
    first, second = (ipaddress.IPv4Address(block << 8 | host) for host in (one, two))
    assert network_of(str(first)) == network_of(str(second)) == network_of(f"::ffff:{second}")
    assert network_of(str(ipaddress.IPv4Address(((block + 1) % 2**24) << 8 | one))) != network_of(str(first))


@pytest.mark.parametrize(("address", "mailbox"), [
    ("victim+1@example.org", "victim@example.org"),
    ("Victim+Promo+2@Example.ORG", "victim@example.org"),
    ("+only@example.org", "@example.org"),
    ("victim@exämple.org", "victim@xn--exmple-cua.org"),
    ("victim@xn--exmple-cua.org", "victim@xn--exmple-cua.org"),
    ("V.ic.tim+x@googlemail.com", "victim@gmail.com"),  # Gmail ignores dots
    ("v.ictim@example.org", "v.ictim@example.org"),  # elsewhere a dot is part of the name
])
def test_a_mailbox_is_the_address_without_its_tag(address, mailbox):
    assert mailbox_of(address) == mailbox


@given(st.from_regex(r"[A-Za-z0-9._+-]{0,40}", fullmatch=True), st.sampled_from(["victim", "VICTIM", "Victim"]))
def test_any_tag_reaches_the_same_mailbox(tag, local):
    assert mailbox_of(f"{local}+{tag}@Example.org") == "victim@example.org"


# --- what the counts decide ----------------------------------------------------------------------

RULES = RateLimit(per_network=2, per_domain=3, per_mailbox=1, overall=4)
KEYS = Keys(network="n", domain="d", mailbox="m", overall="o")


def counts(network=0, domain=0, mailbox=0, overall=0) -> dict[str, Seen]:
    return {"n": Seen(network, 61.2), "d": Seen(domain, 30.0), "m": Seen(mailbox, 5.0), "o": Seen(overall, 7.5)}


@pytest.mark.parametrize(("seen", "outcome", "retry_after", "counted"), [
    (counts(), ADMITTED, 0, ["n", "d", "m"]),  # a network's first post: not counted in all
    (counts(network=1), ADMITTED, 0, ["n", "d", "m", "o"]),
    (counts(network=2), REFUSED, 62, []),
    (counts(network=1, overall=4), REFUSED, 8, []),  # past everybody's share
    (counts(overall=4), ADMITTED, 0, ["n", "d", "m"]),  # a network's first post never waits for others
    (counts(domain=3), REFUSED, 30, []),
    (counts(mailbox=1), QUIET, 0, ["n"]),  # the same answer, nothing sent; the client's post counts
    (counts(mailbox=1, network=2), REFUSED, 62, []),
])
def test_what_the_counts_decide(seen, outcome, retry_after, counted):
    verdict, taken = RULES.decide(KEYS, seen)
    assert (verdict.outcome, verdict.retry_after, taken) == (outcome, retry_after, counted)


def test_without_an_overall_limit_nothing_is_counted_in_all():
    verdict, taken = RateLimit(per_network=5, per_domain=5).decide(KEYS, counts(network=3, overall=10**6))
    assert verdict.outcome == ADMITTED and taken == ["n", "d", "m"]


# --- the store's counters ----------------------------------------------------------------------------


def test_the_counters_are_shared_expire_and_keep_no_address(store_url):
    clock = Clock()
    stores = [Store.open(store_url, now=clock) for _ in range(2)]  # two engines, as two processes have
    rules = RateLimit(per_network=5, per_domain=100, per_mailbox=100)
    outcomes: list[str] = []

    def one_post(n: int) -> None:
        outcomes.append(rules.weigh(stores[n % 2], SECRET_BYTES, f"2001:db8:7::{n:x}", f"p{n}@example.org").outcome)

    try:
        threads = [threading.Thread(target=one_post, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes) == [ADMITTED] * 5 + [REFUSED] * 7  # one /64, weighed as one at once
        with stores[0].db.read() as conn:
            rows = conn.execute(select(t.signup_limits)).all()
        assert len(rows) == 15 and not any("2001" in str(row) or "example" in str(row) for row in rows)

        clock.offset = WINDOW + dt.timedelta(seconds=1)  # 10 minutes on: those no longer count, and go
        assert rules.weigh(stores[1], SECRET_BYTES, "2001:db8:7::1", "p1@example.org").outcome == ADMITTED
        with stores[0].db.read() as conn:
            assert len(conn.execute(select(t.signup_limits)).all()) == 3
    finally:
        for store in stores:
            store.close()


# --- a flood, through a real server ---------------------------------------------------------------------


class Served:
    def __init__(self, project: Project, store: Store, sink, url: str, client: httpx.Client):
        self.project, self.store, self.sink, self.url, self.client = project, store, sink, url, client


@pytest.fixture
def served(tmp_path, secret_env, smtp_sink):  # noqa: F811 - the fixture
    sink = smtp_sink()
    project = Project(tmp_path / "p", extra_config=signup_config(sink.port))
    store = Store.open(project.config().store_url)
    with running(create_app(project.config(), store, SECRET_BYTES)) as url, httpx.Client(timeout=30) as client:
        yield Served(project, store, sink, url, client)
    store.close()


def test_a_flood_from_one_ipv6_64_reaches_the_victim_three_times_and_nobody_else_waits(served):
    answers = [post(served.client, served.url, f"victim+{n}@example.org", f"2001:db8:1::{n:x}") for n in range(1, 71)]
    codes = [a.status_code for a in answers]
    assert codes == [200] * 10 + [429] * 60  # ten from the /64 (the 7 past the mailbox's 3 quietly dropped)
    assert len({a.content for a in answers[:10]}) == 1  # the dropped ones were answered like the others
    time.sleep(1)  # anything more would be here by now
    victim = [m for m in served.sink.received() if mailbox_of(m.rcpt_tos[0]) == "victim@example.org"]
    assert len(victim) == 3
    # another /64 of the same provider, and another network, for other people: at once
    for client_ip, address in (("2001:db8:1:1::1", "friend@example.org"), ("198.51.100.7", "other@example.net")):
        assert post(served.client, served.url, address, client_ip).status_code == 200
    assert [m.rcpt_tos[0] for m in wait_for(served.sink, 5)[3:]] == ["friend@example.org", "other@example.net"]


def test_two_servers_on_one_store_limit_as_one(served):
    other = Store.open(served.project.config().store_url)  # its own engine and writer lock, as a second process has
    try:
        with running(create_app(served.project.config(), other, SECRET_BYTES)) as second:
            codes = [post(served.client, (served.url, second)[n % 2], f"p{n}@d{n}.example", f"203.0.113.{n}").status_code
                     for n in range(14)]
    finally:
        other.close()
    assert codes == [200] * 10 + [429] * 4
    assert len(wait_for(served.sink, 10)) == 10


def test_known_people_and_newcomers_are_limited_alike(served):
    """The limits are weighed before anything about the address is looked up."""
    served.store.subscribers.import_rows([NewSubscriber("known@example.org", "K", "en")], "partners", SECRET_BYTES)
    codes = [post(served.client, served.url, address, "192.0.2.1").status_code
             for address in ["known@example.org", "new@example.org"] * 6]
    assert codes == [200] * 10 + [429] * 2
    assert sorted(m.rcpt_tos[0] for m in wait_for(served.sink, 2)) == ["known@example.org", "new@example.org"]


# --- what a refusal leaves in the log ------------------------------------------------------------------


def test_a_refused_message_is_logged_without_the_address_or_the_name(project, caplog):
    reply = "SMTP DATA refused: 550 5.7.1 <Jana.Haddad+news@example.org> (Jana Haddad, user jana.haddad) refused"
    sent: list = []

    def refuse(message):
        sent.append(message)
        raise SendError(reply)

    config = _with_signup(project)
    store = project.store()
    signups = Signups(config, store, SECRET_BYTES, refuse)
    form = SignupForm(email="Jana.Haddad+news@example.org", name="Jana Haddad", language="en", page_language="en")
    with caplog.at_level(logging.DEBUG):
        signups.after_answer(form)
        signups.after_answer(form)  # a refused message does not hold the next one back
    assert len(sent) == 2
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "could not be sent" in logged and "550 5.7.1" in logged
    assert "jana" not in logged.lower() and "haddad" not in logged.lower()
    store.close()


def _with_signup(project: Project):
    text = project.config_path.read_text(encoding="utf-8")
    project.config_path.write_text(text + '\n[signup]\nlist = "partners"\nprovider = "outbox"\n', encoding="utf-8")
    return project.config()


@pytest.mark.parametrize(("reply", "address", "name"), [
    ("550 5.1.1 <salma@example.org>: Recipient address rejected", "salma@example.org", ""),
    ("550 user salma unknown", "Salma@example.org", "سلمى"),
    ("554 rejected: To: \"Omar Khaled\" <o.khaled@example.net>", "o.khaled@example.net", "Omar Khaled"),
    ("554 rejected message for KHALED, omar", "ok@example.net", "Omar Khaled"),
    ("421 4.7.0 try again later", "x@example.org", "Al"),  # nothing of the person in it: unchanged
])
def test_a_reply_loses_the_address_the_name_and_the_mailbox(reply, address, name):
    cleaned = without_person(reply, address, name)
    for part in (address, *name.split(), address.partition("@")[0]):
        assert len(part) < 3 or part.lower() not in cleaned.lower(), cleaned
    assert cleaned[:3] == reply[:3]
    if "try again" in reply:
        assert cleaned == reply



def test_the_answer_leaves_before_the_address_is_looked_up(served):
    """Whatever the address's state, looking it up cannot change the answer or its time: it
    happens after the answer. The store's lookup is held here until the answer has arrived."""
    looked_up, release = threading.Event(), threading.Event()
    lookup = served.store.signups.request

    def held(*args, **kwargs):
        looked_up.set()
        assert release.wait(10)
        return lookup(*args, **kwargs)

    served.store.signups.request = held  # type: ignore[method-assign]
    with httpx.Client(timeout=5) as fresh:  # its own connection: the held one is busy until released
        answer = post(fresh, served.url, "held@example.org", "192.0.2.9")
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        assert looked_up.wait(5) and served.sink.count() == 0
    release.set()
    assert wait_for(served.sink, 1)[0].rcpt_tos == ("held@example.org",)
