"""projection quarantine: events a projection could not apply, with the reason

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 16:00:00

A projection that cannot apply one event (a value its read model cannot hold, a bug on
one event's data) records it here and goes on, instead of retrying it for good and
holding every later event behind it (issue 15). `projections status`, /metrics and
/readyz report the rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projection_quarantine",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, primary_key=True),
        sa.Column("originator_id", sa.String(36), nullable=False),
        sa.Column("originator_version", sa.BigInteger, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("projection_quarantine")
