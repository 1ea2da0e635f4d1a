"""The sign-up form's counters, shared by every serve process: keyed hashes and times only.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signup_limits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_signup_limits_key", "signup_limits", ["key", "at"])
    op.create_index("ix_signup_limits_at", "signup_limits", ["at"])


def downgrade() -> None:
    op.drop_index("ix_signup_limits_at", "signup_limits")
    op.drop_index("ix_signup_limits_key", "signup_limits")
    op.drop_table("signup_limits")
