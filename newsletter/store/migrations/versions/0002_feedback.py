"""Feedback events (bounces, complaints, deliveries, unsubscribes) and processed SNS messages.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_key", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("ses_message_id", sa.String(300), nullable=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="SET NULL"), nullable=True),
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="SET NULL"), nullable=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL"), nullable=True),
        sa.Column("recipient_hash", sa.String(64), nullable=True),
        sa.Column("bounce_type", sa.String(20), nullable=True),
        sa.Column("complaint_type", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ix_feedback_subscriber_kind", "feedback_events", ["subscriber_id", "kind", "occurred_at"])
    op.create_index("ix_feedback_campaign_kind", "feedback_events", ["campaign_id", "kind"])
    op.create_table(
        "processed_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_key", sa.String(300), nullable=False, unique=True),
        sa.Column("received_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("processed_messages")
    op.drop_table("feedback_events")
