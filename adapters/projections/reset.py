"""Reset a projection: delete the rows it owns, its position and its checkpoint, in one
transaction, so that the next run rebuilds it from the first event (a plain in-place
rebuild) and tries its quarantined events again. Which rows a projection owns is
declared in the registry (`OWNED_ROWS`)."""

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from adapters.readmodel.tables import (
    projection_checkpoints,
    projection_quarantine,
    projection_tracking,
)


@dataclass(frozen=True)
class Owned:
    """All rows of `table`, or those matching `where` when the table is shared."""

    table: sa.Table
    where: Callable[[sa.Table], sa.ColumnElement[bool]] | None = None

    def delete(self) -> sa.Delete:
        stmt = self.table.delete()
        return stmt if self.where is None else stmt.where(self.where(self.table))


def reset_projection(engine: sa.Engine, name: str, owned: tuple[Owned, ...]) -> None:
    with engine.begin() as conn:
        for o in owned:
            conn.execute(o.delete())
        for table in (projection_tracking, projection_checkpoints, projection_quarantine):
            conn.execute(table.delete().where(table.c.name == name))
