"""Sign-up and consent: a person's consent (when, which text, how) and the other columns of their
spreadsheet; sign-ups awaiting confirmation.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("attributes", sa.Text, nullable=True))
    op.add_column("subscribers", sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("subscribers", sa.Column("consent_version", sa.String(40), nullable=True))
    op.add_column("subscribers", sa.Column("consent_source", sa.String(200), nullable=True))
    op.create_table(
        "signups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_key", sa.String(32), nullable=False, unique=True),
        sa.Column("email_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("consent_version", sa.String(40), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_signups_expires", "signups", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_signups_expires", "signups")
    op.drop_table("signups")
    with op.batch_alter_table("subscribers") as batch:
        for column in ("consent_source", "consent_version", "consent_at", "attributes"):
            batch.drop_column(column)
