"""Why a message bounced, in a small fixed vocabulary, and whose fault each reason is. Pure.

Every bounce, from the bounce mailbox or from SES, carries one of these reasons
(newsletter.feedback.diagnosis reads it from a bounce's codes and words; ses_reason maps SES's
bounceType/bounceSubType). A reason says who the failure is about, and so what it does:

- the address (user-unknown, host-unknown, has-moved): hard, the person is suppressed at once;
- the recipient's mailbox or server (mailbox-full, suspended, expired, system-error,
  undetermined): soft, counted toward the soft-bounce window;
- us (sender-rejected, authentication, blocked, rate-limited) or our message (content-rejected,
  message-too-big): nobody is suppressed and nothing is counted against the person; the campaign
  reports it as a deliverability problem, with what to check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

USER_UNKNOWN, HOST_UNKNOWN, HAS_MOVED = "user-unknown", "host-unknown", "has-moved"
MAILBOX_FULL, SUSPENDED, EXPIRED, SYSTEM_ERROR = "mailbox-full", "suspended", "expired", "system-error"
MESSAGE_TOO_BIG, CONTENT_REJECTED = "message-too-big", "content-rejected"
BLOCKED, SENDER_REJECTED, AUTHENTICATION, RATE_LIMITED = "blocked", "sender-rejected", "authentication", "rate-limited"
UNDETERMINED = "undetermined"

HARD_REASONS = frozenset({USER_UNKNOWN, HOST_UNKNOWN, HAS_MOVED})
SOFT_REASONS = frozenset({MAILBOX_FULL, SUSPENDED, EXPIRED, SYSTEM_ERROR, UNDETERMINED})
ABOUT_OUR_SENDING = frozenset({SENDER_REJECTED, AUTHENTICATION, BLOCKED, RATE_LIMITED})
ABOUT_OUR_MESSAGE = frozenset({CONTENT_REJECTED, MESSAGE_TOO_BIG})
NOT_THE_RECIPIENT = ABOUT_OUR_SENDING | ABOUT_OUR_MESSAGE
REASONS = HARD_REASONS | SOFT_REASONS | NOT_THE_RECIPIENT


@dataclass(frozen=True)
class Problem:
    """A deliverability problem of ours: what the bounces said, and what to check."""

    reason: str
    says: str
    check: str


# in the order a campaign's report lists them
PROBLEMS: tuple[Problem, ...] = (
    Problem(
        AUTHENTICATION,
        "receiving servers could not verify that the mail is ours",
        "SPF (the sending server's IP in the From domain's SPF record), DKIM (every message signed, "
        "the selector's public key published in DNS), DMARC (the From domain aligned with SPF or DKIM) "
        "and PTR (the sending IP's reverse DNS names a host that resolves back to that IP); then the sending IP's "
        "reputation",
    ),
    Problem(
        SENDER_REJECTED,
        "receiving servers refused our sender address",
        "that the From and the envelope (bounce) address exist and their domain has MX or A records, "
        "SPF, DKIM and DMARC for that domain, and the domain's and the sending IP's reputation (block lists)",
    ),
    Problem(
        BLOCKED,
        "receiving servers refused our sending server",
        "the sending IP's reputation (block lists such as Spamhaus, the big providers' postmaster tools), "
        "its PTR (reverse DNS), and SPF, DKIM and DMARC",
    ),
    Problem(
        RATE_LIMITED,
        "receiving servers said we send too fast",
        "a lower [send] rate, and the provider's own sending limits",
    ),
    Problem(
        CONTENT_REJECTED,
        "receiving servers refused the letter as spam or for its content",
        "`newsletter check` (the SpamAssassin score, the links and their domains), and the sending IP's reputation",
    ),
    Problem(
        MESSAGE_TOO_BIG,
        "the letter is larger than some servers accept",
        "the letter's size in `newsletter check`: fewer or smaller images",
    ),
)
_PROBLEMS = {problem.reason: problem for problem in PROBLEMS}


def is_hard(reason: str | None) -> bool:
    return reason in HARD_REASONS


def counts_against_recipient(reason: str | None) -> bool:
    """Whether a soft bounce of this reason counts toward the person's soft-bounce window (a
    bounce without a reason, as stored before reasons were, does)."""
    return reason not in NOT_THE_RECIPIENT


def problems(counts: Mapping[str, int]) -> list[tuple[Problem, int]]:
    """The deliverability problems that bounce counts by reason show, in PROBLEMS' order."""
    return [(problem, counts[problem.reason]) for problem in PROBLEMS if counts.get(problem.reason)]


def problem_of(reason: str) -> Problem | None:
    return _PROBLEMS.get(reason)


# SES's bounceSubType, where it names the reason by itself (docs.aws.amazon.com/ses, "Bounce types")
_SES_SUBTYPES = {
    ("Permanent", "NoEmail"): USER_UNKNOWN,
    ("Transient", "MailboxFull"): MAILBOX_FULL,
    ("Transient", "MessageTooLarge"): MESSAGE_TOO_BIG,
    ("Transient", "ContentRejected"): CONTENT_REJECTED,
    ("Transient", "AttachmentRejected"): CONTENT_REJECTED,
}


def ses_subtype_reason(bounce_type: str | None, subtype: str | None) -> str | None:
    """The reason SES's bounceType and bounceSubType name, when they name one (None: read the
    diagnostic code SES passed on)."""
    return _SES_SUBTYPES.get((bounce_type or "", subtype or ""))
