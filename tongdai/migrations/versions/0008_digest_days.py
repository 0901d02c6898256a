"""The back office's daily digest: which days' digests were sent (``digest_days``), so an
engine restarted after the hour does not send that day's again. Additive.

Revision ID: 0008_digest_days
Revises: 0007_postal (written as 0007_digest_days on 0006; chained after main's 0007_postal)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_digest_days"
down_revision = "0007_postal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mails", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("digest_days")
