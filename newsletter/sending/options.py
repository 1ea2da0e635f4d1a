"""What a send is given and what it reports: options, summary, the errors that stop it."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.domain import Campaign
from newsletter.errors import BadInput, NewsletterError, Problem

HEARTBEAT = 1.0  # seconds between a sender's heartbeats (and rate-share updates)
LEASE = 10.0  # a sender silent this long is dead: its in-flight deliveries turn uncertain
CONFIRM_ABOVE = 10  # more recipients than this: ask before sending


class CampaignStopped(NewsletterError):
    """Sending stopped before the end; the campaign can be resumed."""

    exit_code = 1


class NotConfirmed(NewsletterError):
    exit_code = 1


def sender_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class SendRequest:
    """What `newsletter send` was asked to do."""

    issue_dir: Path
    list_name: str = "main"
    provider: str | None = None  # default: send.provider
    yes: bool = False  # no confirmation asked
    resend_uncertain: bool = False
    rate: float | None = None  # default: send.rate
    threads: int | None = None  # default: send.threads
    workers: int = 1
    config_path: Path | None = None


@dataclass
class SendOptions:
    list_name: str
    provider: str
    rate: float  # for the whole campaign, shared among live senders
    threads: int
    max_attempts: int
    resend_uncertain: bool = False
    worker_name: str = field(default_factory=sender_name)
    shared: bool = False  # other processes may be sending the same campaign


@dataclass
class Summary:
    campaign: Campaign
    created: bool
    counts: dict[str, int]
    list_name: str = ""
    provider: str = ""
    written_to: Path | None = None  # the outbox folder, when the provider writes files
    sent_now: int = 0
    skipped_at_freeze: dict[str, int] = field(default_factory=dict)
    recovered_uncertain: int = 0
    requeued_uncertain: int = 0
    failed: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    uncertain: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    stopped: str | None = None
    rate: float = 0.0
    elapsed: float = 0.0


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


def unknown_list(list_name: str, lists: list[str]) -> BadInput:
    known = ", ".join(lists) or "none yet"
    return BadInput([Problem("--list", None, f"no list named {list_name!r} (lists: {known})")])
