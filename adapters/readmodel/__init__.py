"""Read models: SQLAlchemy tables (schema owned by Alembic), views and queries."""
