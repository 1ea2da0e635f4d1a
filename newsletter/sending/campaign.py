"""A campaign's life, the only module that writes a campaign's state: what a send is asked and
reports, what is checked before anything is written (`prepare`), and how a campaign is opened
(resumed, extended or created), requeued, paused, done or cancelled. The loop that sends it is
`sending.engine`.

A campaign is one issue sent to the union of some lists, as a rehearsal (the outbox) or for
real. It is created with its recipients frozen into the ledger, sent by the engine in one or
several processes, paused (an outage, a refusal, Ctrl-C; the same `send` resumes it), done,
or cancelled. A done campaign takes the people who joined its lists since, on request.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from newsletter import domain as d
from newsletter.archive.publish import publish_first
from newsletter.audience.selection import variant_chooser
from newsletter.config import Config
from newsletter.config.delivery import PROVIDERS
from newsletter.domain import Campaign
from newsletter.editor.checks import blocking_problems, real_send_problems
from newsletter.editor.inbox import before_sending
from newsletter.errors import BadInput, NewsletterError, Problem
from newsletter.languages import BOTH
from newsletter.letter.render import Build
from newsletter.message.composer import composable
from newsletter.store import Store
from newsletter.store.campaigns import Recipients

HEARTBEAT = 1.0  # seconds between a sender's heartbeats (and rate-share updates)
LEASE = 10.0  # a sender silent this long is dead: its in-flight deliveries turn uncertain
CONFIRM_ABOVE = 10  # more recipients than this: ask before sending
REHEARSAL_PROVIDERS = ("outbox",)  # nothing leaves the machine: a rehearsal of the real send


class CampaignStopped(NewsletterError):
    """Sending stopped before the end (paused, or some deliveries failed); exit status 1."""

    exit_code = 1


class NotConfirmed(NewsletterError):
    exit_code = 1


class CampaignNotFound(NewsletterError):
    exit_code = 1

    def __init__(self, reference: str, found: int):
        what = "no such campaign" if not found else f"{found} campaigns of that issue; give its number"
        super().__init__(f"campaign {reference!r}: {what} (newsletter campaigns lists them)")


def sender_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class SendRequest:
    """What `newsletter send` was asked to do."""

    issue_dir: Path
    lists: tuple[str, ...] = ("main",)
    provider: str | None = None  # default: send.provider
    yes: bool = False  # no confirmation asked
    resend_uncertain: bool = False
    retry_failed: bool = False
    again: bool = False  # send to people who already had this issue in another campaign
    skip_checks: bool = False
    rate: float | None = None  # default: send.rate
    threads: int | None = None  # default: send.threads
    workers: int = 1
    config_path: Path | None = None


@dataclass
class SendOptions:
    lists: tuple[str, ...]
    provider: str
    rate: float  # for the whole campaign, shared among live senders
    threads: int
    max_attempts: int
    resend_uncertain: bool = False
    retry_failed: bool = False
    again: bool = False
    worker_name: str = field(default_factory=sender_name)
    shared: bool = False  # other processes may be sending the same campaign

    @property
    def rehearsal(self) -> bool:
        return self.provider in REHEARSAL_PROVIDERS

    @property
    def list_name(self) -> str:
        return ", ".join(self.lists)


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


Opened = tuple[Campaign, bool, Recipients]  # the campaign, whether this run created it, who it added


@dataclass
class Summary:
    """What one run did to a campaign, in one process or several; `problem()` decides the exit status."""

    campaign: Campaign
    created: bool
    counts: dict[str, int]
    lists: tuple[str, ...] = ()
    provider: str = ""
    written_to: Path | None = None  # the outbox folder, when the provider writes files
    sent_now: int = 0
    added: int = 0  # put on the ledger by this run (a new campaign, or newcomers to its lists)
    skipped_at_freeze: dict[str, int] = field(default_factory=dict)
    recovered_uncertain: int = 0
    requeued: dict[str, int] = field(default_factory=dict)  # state → deliveries sent again
    failed: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    uncertain: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    stopped: str | None = None  # why the campaign paused
    rate: float = 0.0
    elapsed: float = 0.0
    workers: int = 1  # processes this run started (`send --workers`); 1: it sent itself
    stopped_early: int = 0  # of those processes, the ones that exited with an error
    worker: str | None = None  # this run is `newsletter worker` NAME, one sender among others

    def problem(self) -> CampaignStopped | None:
        """Exit status 1 unless every delivery was sent or skipped for a stated reason (a worker
        among others answers only for its own stop)."""
        c, number = self.counts, self.campaign.id
        if self.stopped_early:
            return CampaignStopped(
                f"campaign {number}: {self.stopped_early} worker(s) stopped early (paused); "
                "run the same command again to resume"
            )
        if self.worker is not None:
            return CampaignStopped(f"campaign {number} stopped: {self.stopped}") if self.stopped else None
        if self.stopped:
            return CampaignStopped(
                f"campaign {number} paused: {self.stopped}\n"
                f"Nothing was marked failed for it; fix the cause, then run the same send again to resume."
            )
        if c.get(d.FAILED) or c.get(d.UNCERTAIN):
            return CampaignStopped(
                f"campaign {number}: {c.get(d.FAILED, 0)} failed, {c.get(d.UNCERTAIN, 0)} uncertain; "
                f"`newsletter campaign show {number}` lists why. --retry-failed sends the failed again, "
                "--resend-uncertain the uncertain."
            )
        if self.campaign.state == d.CAMPAIGN_CANCELLED:
            return CampaignStopped(f"campaign {number} was cancelled while it was sending")
        return None


@dataclass(frozen=True)
class Plan:
    """What a send would do, found without writing: the campaign to resume or extend (None: a
    new one), and the people it would add."""

    campaign: Campaign | None
    newcomers: Recipients


def plan(ready: Ready) -> Plan:
    store, build, options = ready.store, ready.build, ready.options
    campaign = store.campaigns.open_for(build.issue.slug, options.lists, rehearsal=options.rehearsal)
    if campaign is not None and campaign.state == d.CAMPAIGN_DONE and options.again:
        campaign = None  # --again: a new campaign, to those who had the issue too
    if campaign is not None and campaign.content_hash != build.content_hash():
        raise BadInput.single(
            build.issue.path.name,
            f"the issue changed since campaign {campaign.id} started sending it to {options.list_name}; the rest "
            "would get a different letter. Undo the change to resume, or cancel it (newsletter campaign cancel "
            f"{campaign.id}) and send the new letter to those who did not get it.",
        )
    if campaign is not None and campaign.state != d.CAMPAIGN_DONE:
        return Plan(campaign, Recipients())  # resumed as it is
    newcomers = store.campaigns.count_newcomers(
        campaign, build.issue.slug, options.lists, rehearsal=options.rehearsal, secret=ready.secret, again=options.again
    )
    return Plan(campaign, newcomers)


def open_campaign(ready: Ready, confirm: Callable[[str], bool], *, yes: bool) -> Opened:
    """The campaign this send is about: resumed, extended to newcomers, or created (the user's
    yes first when many people would get it). Returns it, whether it is new, and who was added."""
    store, build, options = ready.store, ready.build, ready.options
    found = plan(ready)
    variant_for = variant_chooser(build.config)
    if found.campaign is None:
        ask(confirm, ready, found.newcomers.added, yes=yes)
        campaign, added = store.campaigns.create(
            slug=build.issue.slug,
            lists=options.lists,
            content_hash=build.content_hash(),
            layout=build.config.layout,
            provider=options.provider,
            variant_for=variant_for,
            secret=ready.secret,
            rehearsal=options.rehearsal,
            again=options.again,
        )
        if not options.rehearsal:  # a rehearsal publishes nothing
            publish_first(store, build, rehearsal=False)  # the archive page "view in browser" opens
        return campaign, True, added
    if found.newcomers.added:
        ask(confirm, ready, found.newcomers.added, yes=yes, newcomers_of=found.campaign.id)
        return (
            found.campaign,
            False,
            store.campaigns.add_newcomers(found.campaign, variant_for=variant_for, secret=ready.secret),
        )
    return found.campaign, False, Recipients()


def ask(
    confirm: Callable[[str], bool], ready: Ready, count: int, *, yes: bool, newcomers_of: int | None = None
) -> None:
    """Ask before sending to more than CONFIRM_ABOVE people; NotConfirmed when the answer is no."""
    if count <= CONFIRM_ABOVE or yes:
        return
    build, options = ready.build, ready.options
    lists = ", ".join(repr(name) for name in options.lists)
    how = f"through {options.provider}" + (" (a rehearsal: nothing leaves this machine)" if options.rehearsal else "")
    question = "".join(f"{line}\n" for line in before_sending(build, sent_variants(build)))
    question += f"From: {build.config.sender}\n"
    if newcomers_of is not None:
        question += f"Campaign {newcomers_of} of {build.issue.slug!r} is done; {count} people joined {lists} since.\n"
        question += f"Send it to these {count} people {how}?"
    else:
        question += f"Send {build.issue.slug!r} to {count} people on {lists} {how}?"
    if not confirm(question):
        raise NotConfirmed(f"nothing sent: answer yes, or pass --yes to send to more than {CONFIRM_ABOVE} people")


def sent_variants(build: Build) -> list[str]:
    """The variants a campaign of `build` may send, by the rule that chooses each reader's
    (`variant_chooser`): the bilingual one alone under that layout, otherwise each language's
    and the bilingual one (for readers who chose both)."""
    choose = variant_chooser(build.config)
    possible = {choose(language) for language in (*build.config.codes, BOTH)}
    return [name for name in build.variants if name in possible]


def begin(store: Store, opened: Opened, options: SendOptions, *, written_to: Path | None = None) -> Summary:
    """The summary of a run that starts on the opened campaign, after the one requeue: what was in
    flight in a run that is gone turns uncertain, and the states asked for are sent again."""
    campaign, created, added = opened
    summary = Summary(campaign, created, {}, options.lists, options.provider, written_to)
    summary.added, summary.skipped_at_freeze = added.added, added.skipped
    # Alone (the sender lock held), every `sending` delivery belongs to a dead run; shared,
    # only those of senders whose lease ran out.
    summary.recovered_uncertain = store.ledger.recover_in_flight(campaign.id, lease=LEASE if options.shared else None)
    for wanted, state in ((options.resend_uncertain, d.UNCERTAIN), (options.retry_failed, d.FAILED)):
        if wanted:
            summary.requeued[state] = store.ledger.requeue(campaign.id, (state,))
    return summary


def conclude(store: Store, summary: Summary, *, may_finish: bool) -> Summary:
    """At the end of a run: the campaign paused when the run stopped, done when `may_finish`
    and nothing is left; the counts and the failed and uncertain deliveries read back."""
    campaign_id = summary.campaign.id
    if summary.stopped:
        store.campaigns.set_state(campaign_id, d.CAMPAIGN_PAUSED, summary.stopped)
    elif may_finish:
        finish_if_complete(store, campaign_id)
    summary.counts = store.ledger.delivery_counts(campaign_id)
    summary.failed = store.ledger.deliveries_in(campaign_id, d.FAILED)
    summary.uncertain = store.ledger.deliveries_in(campaign_id, d.UNCERTAIN)
    summary.campaign = store.campaigns.get(campaign_id) or summary.campaign
    return summary


def finish_if_complete(store: Store, campaign_id: int) -> bool:
    """Mark the campaign done when nothing is left to send or in flight."""
    counts = store.ledger.delivery_counts(campaign_id)
    if counts[d.PENDING] or counts[d.SENDING]:
        return False
    return store.campaigns.set_state(campaign_id, d.CAMPAIGN_DONE)


def find(store: Store, reference: str) -> Campaign:
    """The campaign a command names (its number, or its issue when it has one campaign)."""
    found = store.campaigns.find(reference)
    if len(found) != 1:
        raise CampaignNotFound(reference, len(found))
    return found[0]


def cancel(store: Store, reference: str) -> tuple[Campaign, int]:
    """Cancel a campaign: nothing more is sent, what was sent stays recorded, and the issue can
    then go out as a new campaign to those who did not get it. Returns it and the pending skipped."""
    campaign = find(store, reference)
    store.campaigns.set_state(campaign.id, d.CAMPAIGN_CANCELLED, "cancelled by the user")
    skipped = store.campaigns.cancel_pending(campaign.id)
    return store.campaigns.get(campaign.id) or campaign, skipped


# --- before anything is written: the numbers, the provider, every header of every variant,
# placeholder addresses for a real send, the pre-send checks, the key, the lists -----------------

CHOOSE_PROVIDER = (
    "no provider chosen: --provider outbox rehearses (each message written as a file, nothing sent), "
    "--provider smtp or ses sends for real; or set send.provider in newsletter.toml"
)
SKIP_CHECKS = "these checks failed (newsletter check shows them all); fix them, or send anyway with --skip-checks"


def placeholder_problems(provider: str, config: Config) -> list[Problem]:
    """What a send through `provider` refuses: a real one the placeholder addresses and names a
    rehearsal allows (`send` and `send --test` alike)."""
    return [] if provider in REHEARSAL_PROVIDERS else real_send_problems(config)


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
    problems: list[Problem] = composable(build) + placeholder_problems(provider, config)
    if not request.skip_checks and not problems:
        # SpamAssassin takes seconds a variant: its score is `newsletter check`'s to give
        failed = blocking_problems(build, spamassassin=False)
        problems += [*failed, Problem("--skip-checks", None, SKIP_CHECKS)] if failed else []
    if problems:
        raise BadInput(problems)
    store = Store.open(config.store_url)
    secret = store.keys.data_key()
    lists = tuple(dict.fromkeys(request.lists))
    if missing := unknown_lists(lists, [name for name, _ in store.campaigns.lists()]):
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
        shared=request.workers > 1,
    )
    return Ready(build, store, options, secret)


def check_numbers(*, rate: float | None, threads: int | None, workers: int = 1) -> None:
    problems = []
    if rate is not None and rate <= 0:
        problems.append(Problem("--rate", None, f"must be positive, got {rate}"))
    if threads is not None and threads < 1:
        problems.append(Problem("--threads", None, f"must be at least 1, got {threads}"))
    if workers < 1:
        problems.append(Problem("--workers", None, f"must be at least 1, got {workers}"))
    if problems:
        raise BadInput(problems)


def unknown_lists(wanted: tuple[str, ...], known: list[str]) -> BadInput | None:
    missing = [name for name in wanted if name not in known]
    if not missing:
        return None
    lists = ", ".join(known) or "none yet"
    return BadInput([Problem("--list", None, f"no list named {name!r} (lists: {lists})") for name in missing])
