"""kafka_offsets.complete_through: the watermark each partition of a feed has reached

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 18:00:00

Projections run from Kafka by consumer groups (issue 18) report a position that
read-your-writes tokens wait on: the least, over a feed's partitions, of the relay
watermark each partition's worker has read past. Stored beside the partition's offset, in
the same transaction as the read-model change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "kafka_offsets",
        sa.Column("complete_through", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("kafka_offsets") as batch:
        batch.drop_column("complete_through")
