"""Snapshots of what the online-model projections wrote, for exact comparisons between
runs (crashed vs uninterrupted, rebuilt vs original)."""

import pickle
import random
import types
from collections import OrderedDict, deque
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from adapters.projections.registry import OWNED_ROWS, projection_specs
from adapters.readmodel.tables import kafka_offsets, projection_checkpoints, rm_alerts
from adapters.readmodel.times import as_utc

# Written by the alert-action worker, not by a projection: not part of a projection's output.
ACTION_COLUMNS = {rm_alerts.c.action_status.name, rm_alerts.c.action_result.name,
                  rm_alerts.c.acted_at.name}  # fmt: skip


def group_events(engine: sa.Engine, group: str) -> int:
    """Events a Kafka consumer group's committed batches applied (kafka_offsets.events)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(kafka_offsets.c.events), 0)).where(
                    kafka_offsets.c.consumer_group == group
                )
            ).scalar_one()
        )


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
                out[f"{name}:{table.name}"] = [
                    tuple(_canonical(v) for v in r) for r in conn.execute(stmt)
                ]
    return out


def _canonical(value: Any) -> Any:
    """Pickled objects (a stored bandit policy) compared as what they unpickle to."""
    if isinstance(value, bytes):
        return structure(pickle.loads(value))
    if isinstance(value, datetime):  # SQLite gives naive UTC, PostgreSQL aware: compare as UTC
        return as_utc(value)
    return value


def structure(obj: Any) -> Any:
    """A comparable form of an object graph: values, not identities.

    Pickled bytes are not a fair comparison: the same model pickles to different bytes
    when, say, two attributes share one string object in one run and hold equal copies
    in another (the pickle memo differs). This walks the graph instead: primitives by
    value, containers element by element, objects by type and reduced state, random
    generators by their state; a mutable object met again becomes a back-reference, so
    real sharing differences still show.
    """
    seen: dict[int, int] = {}

    def walk(x: Any) -> Any:
        if x is None or isinstance(x, (bool, int, str, bytes)):
            return x
        if isinstance(x, float):
            return repr(x)  # nan == nan, -0.0 != 0.0
        if isinstance(x, (datetime, date, timedelta, UUID)):
            return ("value", type(x).__qualname__, repr(x))
        if isinstance(x, (type, types.FunctionType, types.BuiltinFunctionType)):
            return ("global", getattr(x, "__module__", None), x.__qualname__)
        if isinstance(x, tuple):  # immutable: sharing a tuple changes nothing
            return ("tuple", tuple(walk(e) for e in x))
        if id(x) in seen:
            return ("ref", seen[id(x)])
        seen[id(x)] = len(seen)
        if isinstance(x, random.Random):
            return ("Random", x.getstate())
        if isinstance(x, types.MethodType):
            return ("method", x.__func__.__qualname__, walk(x.__self__))
        if isinstance(x, dict):
            items = [(walk(k), v) for k, v in x.items()]
            if type(x) is not OrderedDict:  # insertion order may follow string hashing
                items.sort(key=lambda kv: repr(kv[0]))
            return (type(x).__qualname__, tuple((k, walk(v)) for k, v in items),
                    walk(getattr(x, "default_factory", None)))  # fmt: skip
        if isinstance(x, (list, deque)):
            return (type(x).__qualname__, tuple(walk(e) for e in x))
        if isinstance(x, (set, frozenset)):
            return (type(x).__qualname__, tuple(sorted((walk(e) for e in x), key=repr)))
        if type(x).__module__ == "numpy":
            return ("numpy", repr(getattr(x, "dtype", None)), repr(x.tolist()))
        reduced = x.__reduce_ex__(5)
        if isinstance(reduced, str):  # a global
            return ("global", reduced)
        return (type(x).__qualname__, tuple(walk(part) for part in reduced[1:]))

    return walk(obj)


def model_states(engine: sa.Engine, names: list[str] | None = None) -> dict[str, Any]:
    """Each projection's checkpointed state as a comparable structure (see `structure`)."""
    with engine.connect() as conn:
        rows = {
            r.name: bytes(r.state)
            for r in conn.execute(sa.select(projection_checkpoints.c.name,
                                            projection_checkpoints.c.state))
        }  # fmt: skip
    return {
        name: structure(pickle.loads(rows[name]))
        for name in names or model_projection_names()
        if name in rows
    }
