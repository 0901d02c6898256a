"""Postal delivery registration (dịch vụ bưu chính công ích): ``postal_registrations`` (one
dossier's delivery, at most one active per dossier: a partial unique index) and
``postal_events`` (every change of state, shown on the ticket).

Revision ID: 0007_postal
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_postal"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
#: postal.sql.ACTIVE_WHERE: keep the two identical
ACTIVE_WHERE = "state IN ('requested', 'registered', 'handed_to_post')"


def upgrade() -> None:
    op.create_table(
        "postal_registrations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "ticket_code",
            sa.String(32),
            sa.ForeignKey("tickets.code", name="fk_postal_ticket", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("dossier_code", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("recipient", sa.String(100), nullable=True),
        sa.Column("province", sa.String(80), nullable=True),
        sa.Column("district", sa.String(80), nullable=True),
        sa.Column("ward", sa.String(80), nullable=True),
        sa.Column("street", sa.String(200), nullable=True),
        sa.Column("preferred_time", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("registered_at", TS, nullable=True),
    )
    op.create_index("ix_postal_registrations_ticket_code", "postal_registrations", ["ticket_code"])
    op.create_index("ix_postal_registrations_state", "postal_registrations", ["state"])
    op.create_index(
        "ix_postal_registrations_registered_at", "postal_registrations", ["registered_at"]
    )
    op.create_index(
        "uq_postal_registrations_active_dossier",
        "postal_registrations",
        ["dossier_code"],
        unique=True,
        sqlite_where=sa.text(ACTIVE_WHERE),
        postgresql_where=sa.text(ACTIVE_WHERE),
    )
    op.create_table(
        "postal_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "registration_id",
            sa.Integer(),
            sa.ForeignKey(
                "postal_registrations.id", name="fk_postal_events_reg", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("at", TS, nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_postal_events_registration_id", "postal_events", ["registration_id"])


def downgrade() -> None:
    op.drop_table("postal_events")
    op.drop_table("postal_registrations")
