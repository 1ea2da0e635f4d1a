"""The statements of one turn of the send loop, each one statement for a whole batch.

A turn records what the provider said about the deliveries that came back, claims the next
ones and looks at the people behind the new claims and behind those still waiting for a
thread (are they still wanted?). Sending costs the database three statements a turn, not
three a message: 4,000 messages a turn of four are about 3,000 statements where one query a
message made 11,500. The statements are built once per dialect; only the list of ids and
the values change from turn to turn.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, bindparam, case, exists, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import BindParameter

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.audience.selection import Standing, decide
from newsletter.store.database import load_attributes, redact

dl = t.deliveries.c


@dataclass(frozen=True)
class Waiting:
    """A delivery as a claim sees it: what its message needs, and why not to send it (or None)."""

    id: int
    variant: str
    language: str
    email: str | None
    name: str | None
    token_key: str | None
    reason: str | None
    attributes: dict[str, str] = field(default_factory=dict, compare=False)

    def claimed(self) -> d.Claimed:
        assert self.email is not None and self.token_key is not None
        return d.Claimed(
            self.id, self.variant, self.language, self.email, self.name or "", self.token_key, self.attributes
        )


@dataclass
class Results:
    """What came back from the provider: `sent` (delivery id, provider message id);
    `failed`/`uncertain` (id, error); `released` ids claimed but never handed over (back to
    pending); `skipped` (id, reason) claimed but no longer wanted."""

    sent: Sequence[tuple[int, str]] = ()
    failed: Sequence[tuple[int, str]] = ()
    uncertain: Sequence[tuple[int, str]] = ()
    released: Sequence[int] = ()
    skipped: Sequence[tuple[int, str]] = ()

    def __bool__(self) -> bool:
        return bool(self.sent or self.failed or self.uncertain or self.released or self.skipped)


@dataclass
class Turn:
    """What one turn of a sender gives back: the deliveries it claimed, and among those it
    looked at again, the ones no longer wanted (delivery id → why)."""

    claimed: list[d.Claimed]
    unwanted: dict[int, str]


def record(conn: Connection, now: dt.datetime, results: Results) -> None:
    """One UPDATE per kind of result present (nearly always only `sent`), whatever the batch's size."""
    for state, items in (
        (d.SENT, results.sent),
        (d.FAILED, _redacted(results.failed)),
        (d.UNCERTAIN, _redacted(results.uncertain)),
        (d.SKIPPED, _redacted(results.skipped)),
    ):
        if items:
            params = {"now": now, **{f"i{n}": i for n, (i, _) in enumerate(items)}}
            params |= {f"v{n}": value for n, (_, value) in enumerate(items)}
            conn.execute(_set_statement(state, len(items)), params)
    if results.released:
        conn.execute(
            update(t.deliveries)
            .where(and_(dl.id.in_(list(results.released)), dl.state == d.SENDING))
            .values(state=d.PENDING, attempts=dl.attempts - 1, updated_at=now)
        )


def _redacted(items: Sequence[tuple[int, str]]) -> list[tuple[int, str | None]]:
    return [(i, redact(e, 2000)) for i, e in items]


@functools.lru_cache(maxsize=256)
def _set_statement(state: str, size: int):
    """`state` for the deliveries :i0…, each with its own value :v0… (the provider's message id
    when sent, else the error or reason), built once per state and batch size."""
    ids: list[BindParameter[int]] = [bindparam(f"i{n}") for n in range(size)]
    value = case({i: bindparam(f"v{n}") for n, i in enumerate(ids)}, value=dl.id) if size > 1 else bindparam("v0")
    values: dict = {"state": state, "updated_at": bindparam("now")}
    if state == d.SENT:
        values |= {"provider_message_id": value, "sent_at": bindparam("now"), "last_error": None}
    else:
        values |= {"last_error": value}
    if state == d.SKIPPED:  # never handed over: the attempt does not count
        values["attempts"] = dl.attempts - 1
    return update(t.deliveries).where(dl.id.in_(ids)).values(values)


def claim(conn: Connection, now: dt.datetime, campaign_id: int, limit: int, worker: str) -> list[int]:
    """Up to `limit` pending deliveries of a campaign not cancelled, now `sending` and claimed by
    `worker`: their ids, in order."""
    rows = conn.execute(
        _claim_statement(conn.dialect.name), {"campaign": campaign_id, "limit": limit, "worker": worker, "now": now}
    )
    return sorted(row[0] for row in rows)


@functools.cache
def _claim_statement(dialect: str):
    pending = (
        select(dl.id)
        .where(and_(dl.campaign_id == bindparam("campaign"), dl.state == d.PENDING))
        .order_by(dl.id)
        .limit(bindparam("limit"))
    )
    if dialect == "postgresql":
        pending = pending.with_for_update(skip_locked=True)  # rows another sender is claiming
    live = exists().where(and_(t.campaigns.c.id == bindparam("campaign"), t.campaigns.c.state != d.CAMPAIGN_CANCELLED))
    # The state guard makes the claim safe on SQLite too, where the subquery takes no lock: a
    # concurrent claimer that got there first leaves those rows out of RETURNING.
    return (
        update(t.deliveries)
        .where(and_(dl.id.in_(pending.scalar_subquery()), dl.state == d.PENDING, live))
        .values(
            state=d.SENDING,
            claimed_by=bindparam("worker"),
            claimed_at=bindparam("now"),
            attempts=dl.attempts + 1,
            updated_at=bindparam("now"),
        )
        .returning(dl.id)
    )


def recipients(conn: Connection, ids: Sequence[int]) -> list[Waiting]:
    """The deliveries `ids` with their people, as a claim sees them, in the order of their ids."""
    if not ids:
        return []
    rows = conn.execute(_recipients_statement(), {"ids": list(ids)})
    return [_waiting(*row) for row in rows]


@functools.cache
def _recipients_statement():
    s = t.subscribers.c
    on_its_lists = exists().where(
        and_(
            t.campaign_lists.c.campaign_id == dl.campaign_id,
            t.list_members.c.list_id == t.campaign_lists.c.list_id,
            t.list_members.c.subscriber_id == dl.subscriber_id,
        )
    )
    return (
        select(
            dl.id,
            dl.variant,
            dl.language,
            s.email,
            s.name,
            s.token_key,
            s.status,
            on_its_lists,
            s.attributes,
            t.campaigns.c.state,
        )  # fmt: skip
        .select_from(t.deliveries.join(t.campaigns).outerjoin(t.subscribers, dl.subscriber_id == s.id))
        .where(dl.id.in_(bindparam("ids", expanding=True)))
        .order_by(dl.id)
    )


def _waiting(delivery_id, variant, language, address, name, token_key, status, member, attributes, campaign_state):
    standing = Standing(
        None if address is None else status,
        language,
        on_lists=bool(member),
        cancelled=campaign_state == d.CAMPAIGN_CANCELLED,
        variant=variant,
    )
    reason = decide(standing).reason
    return Waiting(delivery_id, variant, language, address, name, token_key, reason, load_attributes(attributes))
