"""What a send is given and what it reports: request, options, summary, the errors that stop it."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from newsletter import domain as d
from newsletter.domain import Campaign
from newsletter.errors import BadInput, NewsletterError, Problem

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
class Summary:
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

    def problem(self) -> CampaignStopped | None:
        """Exit status 1 unless every delivery was sent or skipped for a stated reason."""
        c = self.counts
        if self.stopped:
            return CampaignStopped(
                f"campaign {self.campaign.id} paused: {self.stopped}\n"
                f"Nothing was marked failed for it; fix the cause, then run the same send again to resume."
            )
        if c.get(d.FAILED) or c.get(d.UNCERTAIN):
            return CampaignStopped(
                f"campaign {self.campaign.id}: {c.get(d.FAILED, 0)} failed, {c.get(d.UNCERTAIN, 0)} uncertain; "
                f"`newsletter campaign show {self.campaign.id}` lists why. --retry-failed sends the failed again, "
                "--resend-uncertain the uncertain."
            )
        if self.campaign.state == d.CAMPAIGN_CANCELLED:
            return CampaignStopped(f"campaign {self.campaign.id} was cancelled while it was sending")
        return None


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
