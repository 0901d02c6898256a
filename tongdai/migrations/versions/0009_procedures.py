"""The procedure catalogue (``procedures``): national code, name, agency, documents required,
time limit in working days, fee in đồng and level of online service, imported from the
province's CSV by ``tongdai procedures import`` (``dossiers.procedures_sql``).

Revision ID: 0009_procedures
Revises: 0008_digest_days (written as 0007_procedures on 0006; re-chained at the merges)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_procedures"
down_revision = "0008_digest_days"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "procedures",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("documents", sa.Text(), nullable=False),
        sa.Column("time_limit_days", sa.Integer(), nullable=False),
        sa.Column("fee_vnd", sa.Integer(), nullable=False),
        sa.Column("online_level", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("procedures")
