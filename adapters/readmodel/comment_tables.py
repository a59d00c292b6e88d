"""Read-model tables of comment moderation (CommentModerationProjection, migration 0013)."""

import sqlalchemy as sa

from adapters.readmodel.tables import Ts, metadata

# One row per comment case: the moderators' queue. The comment's text and author are
# joined from Engagement.Commented by the projection (NULL when the comment is older
# than its memory); `probability` is the model's prediction when the comment was written.
rm_comment_cases = sa.Table(
    "rm_comment_cases",
    metadata,
    sa.Column("case_id", sa.Uuid, primary_key=True),
    sa.Column("comment_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("video_id", sa.Uuid, nullable=False, index=True),
    sa.Column("author_id", sa.Uuid, nullable=True),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("probability", sa.Float, nullable=True),
    sa.Column("status", sa.String(8), nullable=False),  # open | decided
    sa.Column("reports", sa.Integer, nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),  # report reason -> reports
    sa.Column("flags", sa.Integer, nullable=False),
    sa.Column("flag_score", sa.Float, nullable=True),
    sa.Column("outcome", sa.String(8), nullable=True),  # keep | remove
    sa.Column("opened_at", Ts, nullable=False),
    sa.Column("decided_at", Ts, nullable=True),
    sa.Column("updated_at", Ts, nullable=False),
    sa.Index("ix_rm_comment_cases_status", "status", "opened_at"),
)
