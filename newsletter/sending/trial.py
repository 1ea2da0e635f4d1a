"""Sending that never touches the ledger: a dry run that counts and composes every message,
and test copies of each variant to an editor."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from newsletter import domain as d
from newsletter.audience.addresses import normalise_email
from newsletter.audience.selection import variant_chooser
from newsletter.errors import BadInput, Problem
from newsletter.keys import secret_key
from newsletter.letter.build import build_issue
from newsletter.message.composer import NOBODY_TOKEN_KEY, Composer, Recipient
from newsletter.sending.options import CampaignStopped, unknown_list
from newsletter.sending.providers import SendError, provider_factory
from newsletter.store import Store, utcnow
from newsletter.tokens import TokenSigner


@dataclass
class DryRun:
    list_name: str
    by_variant: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    size: int = 0  # bytes of every message composed

    @property
    def total(self) -> int:
        return sum(self.by_variant.values())


def dry_run(issue_dir: Path, *, list_name: str, config_path: Path | None) -> DryRun:
    """Count who would get which variant, and compose every message, without sending or writing."""
    build = build_issue(issue_dir, config_path)
    secret = secret_key()
    store = Store.open(build.config.store_url)
    if store.list_id(list_name) is None:
        raise unknown_list(list_name, [name for name, _ in store.list_names()])
    choose = variant_chooser(build.config)
    composer = Composer(build.variants, build.config, signer=TokenSigner(secret), campaign_id=0)
    result = DryRun(list_name)
    now = utcnow()
    for sub in store.subscribers(list_name):
        if sub.status != d.ACTIVE:
            result.skipped[sub.status] += 1
            continue
        variant = choose(sub.language)
        result.size += len(composer.compose(variant, Recipient(sub.email, sub.name, sub.token_key, sub.id), now).data)
        result.by_variant[variant] += 1
    return result


def send_test(
    issue_dir: Path, *, address: str, provider: str | None, config_path: Path | None, report: Callable[[str], None]
) -> None:
    """One copy of each variant to `address`, subject marked [TEST], outside the ledger."""
    build = build_issue(issue_dir, config_path)
    secret_key()  # the same requirements as a real send
    try:
        to = normalise_email(address)
    except ValueError as exc:
        raise BadInput([Problem("--test", None, f"{address!r}: {exc}")]) from None
    name = provider or build.config.send.provider
    factory = provider_factory(name, build.config, campaign_label="test")
    composer = Composer(build.variants, build.config, signer=None, campaign_id=0, subject_prefix="[TEST] ")
    sender = factory.open()
    try:
        for variant in build.variants:
            message = composer.compose(variant, Recipient(to, "", NOBODY_TOKEN_KEY), utcnow())
            try:
                message_id = sender.send(message)
            except SendError as exc:
                raise CampaignStopped(f"test message ({variant}) to {to}: {exc}") from exc
            report(f"sent the {variant} variant to {to} through {name} ({message_id})")
    finally:
        sender.close()
