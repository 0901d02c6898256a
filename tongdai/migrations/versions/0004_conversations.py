"""Conversations: messages, contacts and their identities, the inbound event journal, canned
answers; tickets gain a contact and a subject. Additive: existing tickets keep working (their
new columns are NULL).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column(
            "merged_into",
            sa.Integer(),
            sa.ForeignKey("contacts.id", name="fk_contacts_merged_into"),
            nullable=True,
        ),
    )
    op.create_table(
        "contact_identities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "contact_id",
            sa.Integer(),
            sa.ForeignKey("contacts.id", name="fk_contact_identities_contact"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(320), nullable=False),
        sa.UniqueConstraint("kind", "value", name="uq_contact_identities_kind_value"),
    )
    op.create_index("ix_contact_identities_contact_id", "contact_identities", ["contact_id"])
    with op.batch_alter_table("tickets") as b:
        b.add_column(sa.Column("contact_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("subject", sa.Text(), nullable=True))
        b.create_foreign_key("fk_tickets_contact", "contacts", ["contact_id"], ["id"])
        b.create_index("ix_tickets_contact_id", ["contact_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "ticket_id",
            sa.Integer(),
            sa.ForeignKey("tickets.id", ondelete="CASCADE", name="fk_messages_ticket"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("author", sa.String(16), nullable=False),
        sa.Column("author_id", sa.String(320), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("external_id", sa.String(512), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("attachments", sa.Text(), nullable=True),
        sa.Column("delivery", sa.String(16), nullable=False),
        sa.Column("delivery_error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("meta", sa.Text(), nullable=True),
        sa.UniqueConstraint("channel", "external_id", name="uq_messages_channel_external_id"),
    )
    op.create_index("ix_messages_ticket_id", "messages", ["ticket_id", "id"])
    op.create_index("ix_messages_delivery_next", "messages", ["delivery", "next_attempt_at"])
    op.create_table(
        "inbound_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(512), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("processed_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("channel", "external_id", name="uq_inbound_events_channel_external_id"),
    )
    op.create_index("ix_inbound_events_pending", "inbound_events", ["processed_at", "id"])
    op.create_table(
        "canned_answers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("canned_answers")
    op.drop_table("inbound_events")
    op.drop_table("messages")
    with op.batch_alter_table("tickets") as b:
        b.drop_index("ix_tickets_contact_id")
        b.drop_constraint("fk_tickets_contact", type_="foreignkey")
        b.drop_column("subject")
        b.drop_column("contact_id")
    op.drop_table("contact_identities")
    op.drop_table("contacts")
