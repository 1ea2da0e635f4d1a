"""The database tables (SQLAlchemy Core). Changes go through a new Alembic migration."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from newsletter.domain import ACTIVE

metadata = MetaData()


subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),
    # lower-cased address: the uniqueness key (addresses compare case-insensitively)
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("language", String(8), nullable=False),
    Column("status", String(16), nullable=False, default=ACTIVE),
    # random, public: what an unsubscribe token names instead of the address
    Column("token_key", String(32), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # JSON object of text values: the other columns of the spreadsheet the person came from
    Column("attributes", Text, nullable=True),
    # consent: when the person confirmed, the version of the sentence they agreed to, and how
    # they came ("sign-up form", "import partners.csv"); an import records only its source
    Column("consent_at", DateTime(timezone=True), nullable=True),
    Column("consent_version", String(40), nullable=True),
    Column("consent_source", String(200), nullable=True),
)

# Sign-ups awaiting confirmation, for at most their 7 days. The address is here only until the
# person confirms (it moves to subscribers) or the sign-up expires (it is deleted); it is found
# by its keyed hash. No IP address or user agent is kept.
signups = Table(
    "signups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_key", String(32), nullable=False, unique=True),  # what the confirmation link names
    Column("email_hash", String(64), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False),
    Column("language", String(8), nullable=False),  # ar, en or both
    Column("list_name", String(100), nullable=False),
    Column("consent_version", String(40), nullable=False),
    Column("source", String(200), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),  # the last confirmation message
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_signups_expires", "expires_at"),
)

# The sign-up form's counters (newsletter.store.limits): one row per counted post and key, for
# 10 minutes. The key is a keyed hash of a network, a mailbox, a domain or an address: none of
# them is kept in clear.
signup_limits = Table(
    "signup_limits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_signup_limits_key", "key", "at"),
    Index("ix_signup_limits_at", "at"),
)

lists = Table(
    "lists",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

list_members = Table(
    "list_members",
    metadata,
    Column("list_id", Integer, ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
)


campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(200), nullable=False),
    Column("list_id", Integer, ForeignKey("lists.id"), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("layout", String(20), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("state", String(16), nullable=False),
    Column("stop_reason", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # sent through the outbox: a rehearsal never stands in the way of the real send
    Column("rehearsal", Boolean, nullable=False, default=False),
    Index("ix_campaigns_slug", "slug"),
)

# The lists a campaign goes to (list_id above is the first of them): their members get it once.
campaign_lists = Table(
    "campaign_lists",
    metadata,
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("list_id", Integer, ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
)


deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    # NULL once the person was forgotten: the delivery still counts, the person is gone
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="SET NULL"), nullable=True),
    Column("variant", String(16), nullable=False),
    Column("language", String(8), nullable=False),
    Column("state", String(16), nullable=False),
    Column("provider_message_id", String(300), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("claimed_by", String(100), nullable=True),
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("campaign_id", "subscriber_id", name="uq_delivery_campaign_subscriber"),
    Index("ix_deliveries_campaign_state", "campaign_id", "state", "id"),
    Index("ix_deliveries_provider_message_id", "provider_message_id"),
    Index("ix_deliveries_subscriber", "subscriber_id"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True),
    # keyed hash (HMAC-SHA256) of the lower-cased address: no address is kept here
    Column("email_hash", String(64), nullable=False, unique=True),
    Column("reason", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# What SES, SNS and the unsubscribe page told us. Kinds: the SES event kinds from
# newsletter.feedback.ses_events ("bounce", "complaint", "delivery", …) plus "unsubscribe" and
# "resubscribe" from the web pages. No address is stored: a person is linked by id, and an
# unknown recipient only by the keyed hash of the address.
feedback_events = Table(
    "feedback_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_key", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("source", String(16), nullable=False),  # "sns", "sqs", "web"
    Column("ses_message_id", String(300), nullable=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="SET NULL"), nullable=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id", ondelete="SET NULL"), nullable=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="SET NULL"), nullable=True),
    Column("recipient_hash", String(64), nullable=True),
    Column("bounce_type", String(20), nullable=True),
    Column("reason", String(20), nullable=True),  # a bounce's, newsletter.feedback.reasons (every channel)
    Column("complaint_type", String(40), nullable=True),
    Column("detail", Text, nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_feedback_subscriber_kind", "subscriber_id", "kind", "occurred_at"),
    Index("ix_feedback_campaign_kind", "campaign_id", "kind"),
)

# SNS/SQS messages already acted on, by SNS MessageId: a redelivery changes nothing.
processed_messages = Table(
    "processed_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_key", String(300), nullable=False, unique=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# Sending processes at work on a campaign, possibly on several machines. A sender that has
# not renewed its heartbeat within the lease is dead: its in-flight deliveries turn
# uncertain, and the live ones share the provider's rate among themselves.
senders = Table(
    "senders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False, unique=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("stopped_at", DateTime(timezone=True), nullable=True),
)

# The store's data key (one row), wrapped under NEWSLETTER_SECRET_KEY: see newsletter.keys.
store_key = Table(
    "store_key",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

# The public archive: an issue is published by its first real campaign or `newsletter archive
# publish`, with its web pages (newsletter.archive.publish: the same build as the email, nothing
# personal in it) kept as they were then, so that `serve` needs no issue folder.
publications = Table(
    "publications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(200), nullable=False, unique=True),
    Column("issue_date", Date, nullable=False),
    Column("details", Text, nullable=False),  # JSON: per language, the title and the preheader
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

publication_files = Table(
    "publication_files",
    metadata,
    Column("publication_id", Integer, ForeignKey("publications.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(200), primary_key=True),  # e.g. "ar.html", "photo-1a2b3c.jpg"
    Column("media_type", String(100), nullable=False),
    Column("data", LargeBinary, nullable=False),
)
