"""Campaigns to several lists, rehearsals, pauses and cancellations.

A campaign now names its lists in campaign_lists (the union of their members gets it once),
says whether it is a rehearsal (the outbox), and may be paused or cancelled; two campaigns
of one issue and list may exist (after a cancellation, or a rehearsal and the real send).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaign_lists",
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("list_id", sa.Integer, sa.ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
    )
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("uq_campaign_slug_list", type_="unique")
        batch.add_column(sa.Column("rehearsal", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.create_index("ix_campaigns_slug", ["slug"])
    op.create_index("ix_deliveries_subscriber", "deliveries", ["subscriber_id"])
    op.execute("INSERT INTO campaign_lists (campaign_id, list_id) SELECT id, list_id FROM campaigns")
    op.execute("UPDATE campaigns SET rehearsal = (provider = 'outbox')")
    op.execute("UPDATE campaigns SET state = 'paused' WHERE state = 'stopped'")


def downgrade() -> None:
    op.drop_index("ix_deliveries_subscriber", "deliveries")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_index("ix_campaigns_slug")
        batch.drop_column("rehearsal")
        batch.create_unique_constraint("uq_campaign_slug_list", ["slug", "list_id"])
    op.drop_table("campaign_lists")
