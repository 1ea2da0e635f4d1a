"""The sign-up form's rate limits: what a post is counted under, and what the counts decide.

A post is counted under its client's network (an IPv4 /24, an IPv6 /64: one household, office
or provider's block is one client, however many addresses it has), the mailbox it names (the
address without its `+tag`, case-folded, its domain in ASCII: `Victim+7@Example.org` is
`victim@example.org`) and that mailbox's domain. The counts live in the store for 10 minutes
(newsletter.store.limits), by keyed hash, shared by every serve process.

- A network past `per_network` posts is answered 429: that is the client's own rate.
- A domain past `per_domain` is answered 429 too.
- A mailbox past `per_mailbox` is answered as every post is ("check your inbox") and nothing
  happens: the answer never says whether anyone else asked for that mailbox.
- `overall`, when set, counts a network's posts only from its second in the window on, so
  that a flood from a few networks cannot lock out a visitor from anywhere else: a network's
  first post never waits for the others.

Nothing here depends on whether the address is known, active or suppressed: that is looked up
after the answer.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass

from newsletter.keys import email_key
from newsletter.store import Store
from newsletter.store.limits import Seen, limit_key

ADMITTED = "admitted"  # counted everywhere: the sign-up goes ahead after the answer
QUIET = "quiet"  # the mailbox had its share: the same answer, and nothing happens
REFUSED = "refused"  # 429

# Providers that deliver `first.last@` to `firstlast@`: a dot there is another tag.
_DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


NOT_AN_ADDRESS = "not an IP address"


def network_of(client: str) -> str:
    """The block a client address belongs to: IPv4 /24, IPv6 /64, an IPv4-mapped IPv6 address
    as IPv4. Whatever is not an IP address (a test client, a proxy's garbage) is one client, so
    that made-up names cannot make new clients."""
    text = client.strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 203.0.113.7:443
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return NOT_AN_ADDRESS
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def mailbox_of(address: str) -> str:
    """The mailbox an address reaches: its key (case-folded, IDN in ASCII) without the `+tag`,
    and without dots where the provider ignores them."""
    local, _, domain = email_key(address).rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _DOTLESS:
        local, domain = local.replace(".", ""), _DOTLESS[domain]
    return f"{local}@{domain}"


@dataclass(frozen=True)
class Keys:
    """What one post is counted under, each a keyed hash."""

    network: str
    domain: str
    mailbox: str
    overall: str

    @classmethod
    def of(cls, secret: bytes, client: str, address: str) -> Keys:
        mailbox = mailbox_of(address)  # its domain is the mailbox's: `googlemail.com` counts as `gmail.com`
        return cls(
            network=limit_key(secret, "network", network_of(client)),
            domain=limit_key(secret, "domain", mailbox.rpartition("@")[2]),
            mailbox=limit_key(secret, "mailbox", mailbox),
            overall=limit_key(secret, "overall", ""),
        )


@dataclass(frozen=True)
class Verdict:
    outcome: str  # ADMITTED, QUIET or REFUSED
    retry_after: int = 0  # seconds, with REFUSED


def _refused(seen: Seen) -> tuple[Verdict, list[str]]:
    return Verdict(REFUSED, max(1, math.ceil(seen.frees_in))), []


@dataclass(frozen=True)
class RateLimit:
    """The limits, each per 10 minutes (newsletter.toml's [signup])."""

    per_network: int
    per_domain: int
    per_mailbox: int = 3
    overall: int | None = None

    def decide(self, keys: Keys, seen: Mapping[str, Seen]) -> tuple[Verdict, list[str]]:
        """The verdict on a post, and the keys to count it under (none when it is refused)."""
        network = seen[keys.network]
        if network.count >= self.per_network:
            return _refused(network)
        shared = self.overall is not None and network.count > 0  # a network's first post is its own
        if shared and seen[keys.overall].count >= (self.overall or 0):
            return _refused(seen[keys.overall])
        if seen[keys.domain].count >= self.per_domain:
            return _refused(seen[keys.domain])
        if seen[keys.mailbox].count >= self.per_mailbox:
            return Verdict(QUIET), [keys.network]
        counted = [keys.network, keys.domain, keys.mailbox]
        return Verdict(ADMITTED), [*counted, keys.overall] if shared else counted

    def weigh(self, store: Store, secret: bytes, client: str, address: str) -> Verdict:
        """The verdict on a post from `client` for `address`, counted in the store."""
        keys = Keys.of(secret, client, address)
        return store.limits.weigh(
            (keys.network, keys.domain, keys.mailbox, keys.overall), lambda seen: self.decide(keys, seen)
        )
