"""What is stored about a person, in words: `newsletter subscribers show` for an access request."""

from __future__ import annotations

import datetime as dt

from newsletter.domain import PersonRecord


def _when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def describe(record: PersonRecord) -> list[tuple[str, str]]:
    """(label, value) lines, in the order a person would read them."""
    sub = record.subscriber
    if not sub.id:
        lines = [("email", sub.email), ("status", "a sign-up awaits confirmation")]
        lines.append(("asked on", _when(record.pending_signup)))
        return lines
    if record.consent_at:
        consent = f"given {_when(record.consent_at)}, consent text version {record.consent_version or '?'}"
        consent += f", by the {record.consent_source}" if record.consent_source else ""
    else:
        consent = "not recorded" + (f" (came by {record.consent_source})" if record.consent_source else "")
    lines = [
        ("email", sub.email),
        ("name", sub.name or "(none)"),
        ("language", sub.language),
        ("status", sub.status),
        ("lists", ", ".join(record.lists) or "(none)"),
        ("consent", consent),
        ("added", _when(sub.created_at)),
        ("last changed", _when(record.updated_at)),
    ]
    lines += [(f"attribute {key}", value) for key, value in sorted(record.attributes.items())]
    if record.pending_signup:
        lines.append(("sign-up", f"a new sign-up awaits confirmation since {_when(record.pending_signup)}"))
    sent = [f"{slug} ({state}{', ' + _when(when) if when else ''})" for slug, state, when in record.deliveries]
    lines.append(("letters", "; ".join(sent) or "none yet"))
    events = [f"{kind} ({source}, {_when(when)})" for kind, source, when in record.events]
    lines.append(("events", "; ".join(events) or "none"))
    if record.suppressed:
        lines.append(("suppressed", "yes: no letter or message goes to this address"))
    return lines
