"""Why each bounce bounced, in newsletter.feedback.reasons' words, for every channel (SES and
the bounce mailbox alike), so reports compare. Bounces stored before it have none.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feedback_events", sa.Column("reason", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback_events") as batch:
        batch.drop_column("reason")
