"""Snapshots of what the online-model projections wrote, for exact comparisons between
runs (crashed vs uninterrupted, rebuilt vs original)."""

import pickle
from typing import Any

import sqlalchemy as sa

from adapters.projections.registry import OWNED_ROWS, projection_specs
from adapters.readmodel.tables import projection_checkpoints, rm_alerts

# Written by the alert-action worker, not by a projection: not part of a projection's output.
ACTION_COLUMNS = {rm_alerts.c.action_status.name, rm_alerts.c.action_result.name,
                  rm_alerts.c.acted_at.name}  # fmt: skip


def model_projection_names() -> list[str]:
    return [s.name for s in projection_specs() if hasattr(s.projection, "dump_state")]


def model_outputs(engine: sa.Engine, names: list[str] | None = None) -> dict[str, Any]:
    """Every row each named projection owns, sorted by primary key, action columns left out."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for name in names or model_projection_names():
            for owned in OWNED_ROWS[name]:
                table = owned.table
                cols = [c for c in table.columns if c.name not in ACTION_COLUMNS]
                stmt = sa.select(*cols).order_by(*table.primary_key.columns)
                if owned.where is not None:
                    stmt = stmt.where(owned.where(table))
                out[f"{name}:{table.name}"] = [tuple(r) for r in conn.execute(stmt)]
    return out


def model_states(engine: sa.Engine, names: list[str] | None = None) -> dict[str, bytes]:
    """Each projection's checkpointed state, loaded and dumped again (a canonical form: a
    state that went through a checkpoint and one that did not pickle alike afterwards)."""
    with engine.connect() as conn:
        rows = {
            r.name: bytes(r.state)
            for r in conn.execute(sa.select(projection_checkpoints.c.name,
                                            projection_checkpoints.c.state))
        }  # fmt: skip
    return {
        name: pickle.dumps(pickle.loads(rows[name]), protocol=5)
        for name in names or model_projection_names()
        if name in rows
    }
