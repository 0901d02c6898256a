"""The back office: the knowledge base (``kb_entries``; on PostgreSQL the ``unaccent``
extension its search uses, on SQLite the FTS5 table ``kb_fts`` of folded text); complaint
sub-types on tickets (``complaint_type``: ``can_bo`` is confidential) and the audit log of
views of personal data (``audit_log``).

Revision ID: 0006
Revises: 0005 (written on 0004, re-chained after 0005 once main had it; nothing here depends on it)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
#: the PostgreSQL search vector (tickets.sql_kb.PG_VECTOR: keep the two identical)
PG_VECTOR = (
    "to_tsvector('simple'::regconfig, tongdai_unaccent(coalesce(question, '') || ' ' ||"
    " coalesce(procedure, '') || ' ' || coalesce(category, '') || ' ' || coalesce(answer, '')))"
)


def upgrade() -> None:
    op.create_table(
        "kb_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("procedure", sa.String(200), nullable=True),
        sa.Column("ticket_code", sa.String(32), nullable=True),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("ticket_code", name="uq_kb_entries_ticket_code"),
    )
    with op.batch_alter_table("tickets") as b:
        b.add_column(sa.Column("complaint_type", sa.String(16), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("ticket_code", sa.String(32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_ticket_code", "audit_log", ["ticket_code"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        # unaccent() is only STABLE (its dictionary could change): an index needs an
        # IMMUTABLE wrapper naming the dictionary; tickets.sql_kb queries the same expression
        op.execute(
            "CREATE OR REPLACE FUNCTION tongdai_unaccent(text) RETURNS text"
            " LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT COST 1000"
            " AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$"
        )
        op.execute(f"CREATE INDEX kb_fts_pg ON kb_entries USING gin ({PG_VECTOR})")
    else:
        op.execute("CREATE VIRTUAL TABLE kb_fts USING fts5(body, tokenize='unicode61')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS kb_fts")
    op.drop_table("kb_entries")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS tongdai_unaccent(text)")
    op.drop_table("audit_log")
    with op.batch_alter_table("tickets") as b:
        b.drop_column("complaint_type")
