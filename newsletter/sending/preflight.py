"""Everything checked before a send writes or sends anything: the numbers, the provider, every
header of every variant, placeholder addresses for a real send, the pre-send checks, the key,
the lists. And the question the user answers before a campaign reaches many people."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from newsletter.config.delivery import PROVIDERS
from newsletter.editor.checks import blocking_problems, real_send_problems
from newsletter.errors import BadInput, Problem
from newsletter.letter.build import Build
from newsletter.message.composer import composable
from newsletter.sending.options import (
    CONFIRM_ABOVE,
    NotConfirmed,
    SendOptions,
    SendRequest,
    check_numbers,
    unknown_lists,
)
from newsletter.store import Store

CHOOSE_PROVIDER = (
    "no provider chosen: --provider outbox rehearses (each message written as a file, nothing sent), "
    "--provider smtp or ses sends for real; or set send.provider in newsletter.toml"
)
SKIP_CHECKS = "these checks failed (newsletter check shows them all); fix them, or send anyway with --skip-checks"


@dataclass
class Ready:
    """A send that passed every check: what it sends, how, and where it is recorded."""

    build: Build
    store: Store
    options: SendOptions
    secret: bytes

    @property
    def lock_key(self) -> str:
        return lock_key(self.build.issue.slug, self.options.lists, self.options.rehearsal)


def lock_key(slug: str, lists: tuple[str, ...], rehearsal: bool) -> str:
    """One sender at a time per campaign: the issue, its lists, rehearsal or real."""
    return f"{slug}|{','.join(sorted(lists))}|{'rehearsal' if rehearsal else 'real'}"


def prepare(build: Build, request: SendRequest) -> Ready:
    """Check the send `request` asks for, before anything is written; BadInput lists every problem."""
    config = build.config
    check_numbers(rate=request.rate, threads=request.threads, workers=request.workers)
    provider = request.provider or config.send.provider
    if provider is None or provider not in PROVIDERS:
        raise BadInput.single("--provider", CHOOSE_PROVIDER)
    if request.workers > 1 and not config.store_url.startswith("postgresql"):
        message = 'several workers need PostgreSQL (store.url = "postgresql://…"); SQLite allows one'
        raise BadInput.single("--workers", message)
    problems: list[Problem] = composable(build)
    if provider != "outbox":
        problems += real_send_problems(config)
    if not request.skip_checks and not problems:
        # SpamAssassin takes seconds a variant: its score is `newsletter check`'s to give
        failed = blocking_problems(build, spamassassin=False)
        problems += [*failed, Problem("--skip-checks", None, SKIP_CHECKS)] if failed else []
    if problems:
        raise BadInput(problems)
    store = Store.open(config.store_url)
    secret = store.secret_key()
    lists = tuple(dict.fromkeys(request.lists))
    if missing := unknown_lists(lists, [name for name, _ in store.list_names()]):
        raise missing
    options = SendOptions(
        lists=lists,
        provider=provider,
        rate=request.rate or config.send.rate,
        threads=request.threads or config.send.threads,
        max_attempts=config.send.max_attempts,
        resend_uncertain=request.resend_uncertain,
        retry_failed=request.retry_failed,
        again=request.again,
    )
    return Ready(build, store, options, secret)


def ask(
    confirm: Callable[[str], bool], ready: Ready, count: int, *, yes: bool, newcomers_of: int | None = None
) -> None:
    """Ask before sending to more than CONFIRM_ABOVE people; NotConfirmed when the answer is no."""
    if count <= CONFIRM_ABOVE or yes:
        return
    build, options = ready.build, ready.options
    subject = next(iter(build.variants.values())).subject
    lists = ", ".join(repr(name) for name in options.lists)
    how = f"through {options.provider}" + (" (a rehearsal: nothing leaves this machine)" if options.rehearsal else "")
    question = f"Subject: {subject}\nFrom: {build.config.sender}\n"
    if newcomers_of is not None:
        question += f"Campaign {newcomers_of} of {build.issue.slug!r} is done; {count} people joined {lists} since.\n"
        question += f"Send it to these {count} people {how}?"
    else:
        question += f"Send {build.issue.slug!r} to {count} people on {lists} {how}?"
    if not confirm(question):
        raise NotConfirmed(f"nothing sent: answer yes, or pass --yes to send to more than {CONFIRM_ABOVE} people")
