"""Recommendations read model, version 3: what the reader needs to rank as the projection

The hashtags' views (rm_reco_tags: with the viewer's per-hashtag views in
rm_reco_viewers, the taste lifts as of any time), the projection's candidate pools and
event-time watermark (rm_reco_pools), each video's interned index (rm_reco_items.position,
the projection's tie-break).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("rm_reco_items", sa.Column("position", sa.Integer(), nullable=True))
    op.create_table(
        "rm_reco_tags",
        sa.Column("hashtag", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("views", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("hashtag"),
    )
    op.create_table(
        "rm_reco_pools",
        sa.Column("pool", sa.String(length=100), nullable=False),
        sa.Column("videos", sa.JSON(), nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("pool"),
    )


def downgrade() -> None:
    op.drop_table("rm_reco_pools")
    op.drop_table("rm_reco_tags")
    with op.batch_alter_table("rm_reco_items") as batch:
        batch.drop_column("position")
