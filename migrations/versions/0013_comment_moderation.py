"""Comment moderation read models (issue 17): the comment case queue

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rm_comment_cases",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("comment_id", sa.Uuid(), nullable=False),
        sa.Column("video_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("flag_score", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=True),
        sa.Column("opened_at", Ts, nullable=False),
        sa.Column("decided_at", Ts, nullable=True),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
        sa.UniqueConstraint("comment_id"),
    )
    op.create_index(op.f("ix_rm_comment_cases_video_id"), "rm_comment_cases", ["video_id"])
    op.create_index("ix_rm_comment_cases_status", "rm_comment_cases", ["status", "opened_at"])


def downgrade() -> None:
    op.drop_index("ix_rm_comment_cases_status", table_name="rm_comment_cases")
    op.drop_index(op.f("ix_rm_comment_cases_video_id"), table_name="rm_comment_cases")
    op.drop_table("rm_comment_cases")
