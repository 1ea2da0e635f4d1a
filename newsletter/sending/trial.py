"""Sending that never touches the ledger: a dry run that counts and composes exactly what the
same `send` would send, and test copies of the letter to editors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter import domain as d
from newsletter.audience.selection import variant_chooser
from newsletter.editor.inbox import before_sending
from newsletter.errors import BadInput, Problem
from newsletter.keys import TokenSigner, normalise_email, secret_key
from newsletter.languages import BILINGUAL
from newsletter.letter.render import build_issue
from newsletter.message.composer import NOBODY_TOKEN_KEY, Composer, Recipient, ensure_composable
from newsletter.sending.campaign import (
    CHOOSE_PROVIDER,
    CampaignStopped,
    Plan,
    Ready,
    SendRequest,
    placeholder_problems,
    plan,
    prepare,
)
from newsletter.sending.engine import provider_factory
from newsletter.sending.providers.base import SendError
from newsletter.store import utcnow


@dataclass
class DryRun:
    lists: tuple[str, ...]
    campaign_id: int | None = None  # the campaign it would resume or extend; None: a new one
    by_variant: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    size: int = 0  # bytes of every message composed
    inbox: list[str] = field(default_factory=list)  # the subject and preheader of each variant counted

    @property
    def total(self) -> int:
        return sum(self.by_variant.values())


def dry_run(request: SendRequest) -> DryRun:
    """Everything `send` would check and send, composed and counted; nothing sent or written."""
    ready = prepare(build_issue(request.issue_dir, request.config_path), request)
    found = plan(ready)
    composer = Composer(ready.build.variants, ready.build.config, signer=TokenSigner(ready.secret), campaign_id=0)
    result = DryRun(ready.options.lists, found.campaign.id if found.campaign else None)
    now = utcnow()
    for variant, email, name, token_key, reason in _who(ready, found):
        if reason is not None:
            result.skipped[reason] += 1
            continue
        result.size += len(composer.compose(variant, Recipient(email, name, token_key), now).data)
        result.by_variant[variant] += 1
    result.inbox = before_sending(ready.build, [name for name in ready.build.variants if name in result.by_variant])
    return result


def _who(ready: Ready, found: Plan) -> Iterator[tuple[str, str, str, str, str | None]]:
    options, store = ready.options, ready.store
    if found.campaign is not None and found.campaign.state != d.CAMPAIGN_DONE:
        states = [d.PENDING]
        states += [d.UNCERTAIN] if options.resend_uncertain else []
        states += [d.FAILED] if options.retry_failed else []
        for w in store.ledger.waiting(found.campaign.id, states):
            yield w.variant, w.email or "", w.name or "", w.token_key or "", w.reason
        return
    choose = variant_chooser(ready.build.config)
    for person in store.campaigns.newcomers(
        found.campaign,
        ready.build.issue.slug,
        options.lists,
        rehearsal=options.rehearsal,
        secret=ready.secret,
        again=options.again,
    ):
        yield choose(person.language), person.email, person.name, person.token_key, person.reason


def test_variants(layout: str, names: list[str], *, every: bool) -> list[str]:
    """The variants subscribers get under the layout (all of them with `every`)."""
    if every:
        return names
    if layout == "bilingual" and BILINGUAL in names:
        return [BILINGUAL]
    return [name for name in names if name != BILINGUAL]


def send_test(
    issue_dir: Path,
    *,
    addresses: list[str],
    provider: str | None,
    every_variant: bool,
    config_path: Path | None,
    report: Callable[[str], None],
) -> None:
    """A copy of the letter for each address, as subscribers get it, subject marked [TEST], outside
    the ledger; its unsubscribe link opens a page that changes nothing. Through a real provider
    (not the outbox) it refuses what a real send refuses: placeholder addresses and names."""
    build = build_issue(issue_dir, config_path)
    ensure_composable(build)
    secret_key()  # the same requirements as a real send
    problems, to = [], []
    for address in addresses:
        try:
            to.append(normalise_email(address))
        except ValueError as exc:
            problems.append(Problem("--test", None, f"{address!r}: {exc}"))
    name = provider or build.config.send.provider
    if name is None:
        problems.append(Problem("--provider", None, CHOOSE_PROVIDER))
    else:
        problems += placeholder_problems(name, build.config)
    if problems or name is None:
        raise BadInput(problems)
    factory = provider_factory(name, build.config, campaign_label="test")
    composer = Composer(build.variants, build.config, signer=None, campaign_id=0, subject_prefix="[TEST] ")
    variants = test_variants(build.config.layout, list(build.variants), every=every_variant)
    sender = factory.open()
    try:
        for address in to:
            for variant in variants:
                message = composer.compose(variant, Recipient(address, "", NOBODY_TOKEN_KEY), utcnow())
                try:
                    message_id = sender.send(message)
                except SendError as exc:
                    raise CampaignStopped(f"test message ({variant}) to {address}: {exc}") from exc
                report(f"sent the {variant} variant to {address} through {name} ({message_id})")
    finally:
        sender.close()
