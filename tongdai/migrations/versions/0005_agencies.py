"""The back office: forwards of tickets to agencies (deadline, answer, extension, sending
back, the agency's notice, the answer's way back to the citizen) and the agency an ``agency``
account belongs to. Additive: existing tickets and accounts keep working.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "forwards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "ticket_code",
            sa.String(32),
            sa.ForeignKey("tickets.code", name="fk_forwards_ticket", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("agency_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("forwarded_at", TS, nullable=False),
        sa.Column("forwarded_by", sa.String(64), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("extended_at", TS, nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("answered_by", sa.String(64), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answer_public", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("sent_back_at", TS, nullable=True),
        sa.Column("sent_back_by", sa.String(64), nullable=True),
        sa.Column("sent_back_reason", sa.Text(), nullable=True),
        sa.Column("notify", sa.String(16), nullable=False),
        sa.Column("notify_error", sa.Text(), nullable=True),
        sa.Column("notified_at", TS, nullable=True),
        sa.Column("replied_at", TS, nullable=True),
        sa.Column("reply_via", sa.String(16), nullable=True),
        sa.Column("callback_done_at", TS, nullable=True),
    )
    op.create_index("ix_forwards_agency_state", "forwards", ["agency_id", "state"])
    op.create_index("ix_forwards_ticket_code", "forwards", ["ticket_code"])
    op.create_index("ix_forwards_forwarded_at", "forwards", ["forwarded_at"])
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("agency_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as b:
        b.drop_column("agency_id")
    op.drop_table("forwards")
