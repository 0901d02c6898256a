"""Report fields on tickets (satisfaction, after-call work, complaint due date, resolution
time) and what the report aggregations need. Additive: every new column is nullable.

On PostgreSQL, extended statistics on the Vietnam-time buckets the reports group by (the
expressions of ``reports/sqltime.py``; keep them the same): without them the planner takes
every distinct ``started_at`` for a group, expects a million groups instead of 365 days and
sorts on disk instead of hashing (a year's report: 12.9 s -> 10.0 s on a million calls).

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

#: name -> columns of the indexes the reports need (see reports/kpi.py). The call views
#: range-scan ``ix_tickets_started_at`` (0001); (started_at, queue) and (started_at, agent)
#: were tried and neither SQLite nor PostgreSQL used them (the aggregates read a dozen
#: columns), so they are not here. Complaints of a period: (category, started_at).
INDEXES = {
    "ix_tickets_category_started_at": ["category", "started_at"],
}


#: PostgreSQL statistics name -> the expressions (as ``reports.sqltime`` writes them)
_LOCAL = "timezone('Asia/Ho_Chi_Minh'::text, started_at)"
STATISTICS = {
    "st_tickets_vn_day": [f"(to_char({_LOCAL}, 'YYYY-MM-DD'::text))"],
    "st_tickets_vn_week": [f"(to_char({_LOCAL}, 'IYYY-\"W\"IW'::text))"],
    "st_tickets_vn_month": [f"(to_char({_LOCAL}, 'YYYY-MM'::text))"],
    "st_tickets_vn_hour_of_week": [
        f"(CAST(EXTRACT(isodow FROM {_LOCAL}) AS INTEGER))",
        f"(CAST(EXTRACT(hour FROM {_LOCAL}) AS INTEGER))",
    ],
}


def _postgres() -> bool:
    """PostgreSQL 14 or later (statistics on expressions came in 14)."""
    dialect = op.get_bind().dialect
    return dialect.name == "postgresql" and (dialect.server_version_info or (0,)) >= (14,)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("satisfaction", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("acw_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("due_at", TS, nullable=True))
        batch.add_column(sa.Column("resolved_at", TS, nullable=True))
    for name, columns in INDEXES.items():
        op.create_index(name, "tickets", columns)
    if _postgres():
        for name, expressions in STATISTICS.items():
            op.execute(f"CREATE STATISTICS {name} ON {', '.join(expressions)} FROM tickets")


def downgrade() -> None:
    if _postgres():
        for name in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
    for name in INDEXES:
        op.drop_index(name, table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        for column in ("resolved_at", "due_at", "acw_seconds", "satisfaction"):
            batch.drop_column(column)
