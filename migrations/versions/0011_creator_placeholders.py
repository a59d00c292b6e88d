"""rm_creators: a creator's counters may arrive before its profile

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 18:10:00

Projections run by keyed Kafka workers (issue 18) receive a creator's events (keyed by the
creator) and its videos' events (keyed by the video) in any interleaving: a video's
Published or views may be applied before its creator's Registered. The stats view then
creates the creator's row with its counters only; Registered fills in the profile. Until
then the profile columns are NULL, and readers skip such rows (a creator not registered
yet, as far as this read model knows).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROFILE = (
    ("handle", sa.String(32)),
    ("display_name", sa.String(100)),
    ("region", sa.String(2)),
    ("status", sa.String(16)),
    ("registered_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("rm_creators") as batch:
        for name, type_ in PROFILE:
            batch.alter_column(name, existing_type=type_, nullable=True)


def downgrade() -> None:
    # Rows without a profile cannot stay: a rebuild of the stats projection restores them.
    op.execute(sa.text("DELETE FROM rm_creators WHERE handle IS NULL"))
    with op.batch_alter_table("rm_creators") as batch:
        for name, type_ in PROFILE:
            batch.alter_column(name, existing_type=type_, nullable=False)
