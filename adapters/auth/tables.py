"""The api_keys table (Alembic revision 0007). Its own MetaData: keys are not a read
model, so rebuilds, resets and replay sandboxes never touch them."""

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False),  # sha256 hex of the secret part
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("subject_id", sa.Uuid, nullable=True),
    sa.Column("label", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)
