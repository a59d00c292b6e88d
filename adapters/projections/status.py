"""Where every projection is: position, lag behind the store head, rate, last error, and
the position of a blue/green rebuild in progress.

The rate is measured, not estimated: `projection_tracking` holds each projection's
position and its running count of applied events (`events`), committed with every batch
by whichever process runs it, so two reads `sample_seconds` apart give events/s and
positions/s for runners in any process. ETA = lag / positions per second.
"""

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.projections.quarantine import quarantine_counts
from adapters.projections.rebuild import shadow_positions
from adapters.projections.registry import projection_specs
from adapters.readmodel.tables import projection_tracking
from adapters.readmodel.times import as_utc
from commands.base import SharedStore


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    version: int  # Projection.version: bumped when the read model's meaning changes
    position: int
    head: int
    events: int  # applied since the projection was (re)built
    updated_at: datetime | None  # of the last committed batch
    last_error: str | None
    rate: float | None  # events applied per second over the sample (None: not sampled)
    positions_per_second: float | None
    rebuild_position: int | None  # a blue/green shadow in progress (or interrupted)
    quarantined: int = 0  # events it moved past (adapters/projections/quarantine.py)

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)

    @property
    def eta_seconds(self) -> float | None:
        if self.lag == 0:
            return 0.0
        if not self.positions_per_second:
            return None
        return self.lag / self.positions_per_second

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        out["lag"], out["eta_seconds"] = self.lag, self.eta_seconds
        return out


def _tracking(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {r.name: r for r in conn.execute(sa.select(projection_tracking))}


def _quarantined(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return quarantine_counts(conn)


def projection_status(
    store: SharedStore, engine: sa.Engine, *, sample_seconds: float = 1.0
) -> list[ProjectionStatus]:
    """Every registered projection, in registry order. With `sample_seconds` > 0 the
    tracking table is read twice that far apart to measure rates."""
    specs = projection_specs()
    first, t0 = _tracking(engine), time.monotonic()
    if sample_seconds > 0:
        time.sleep(sample_seconds)  # the measurement interval itself, not a wait for a state
    rows, elapsed = _tracking(engine), time.monotonic() - t0
    head = store.recorder.max_notification_id() or 0
    shadows = shadow_positions(engine, [s.name for s in specs])
    counts = _quarantined(engine)
    out = []
    for spec in specs:
        row, before = rows.get(spec.name), first.get(spec.name)
        rate = per_second = None
        if sample_seconds > 0:
            events = (row.events if row else 0) - (before.events if before else 0)
            moved = (row.position if row else 0) - (before.position if before else 0)
            rate, per_second = max(events, 0) / elapsed, max(moved, 0) / elapsed
        out.append(
            ProjectionStatus(
                name=spec.name,
                version=spec.projection.version,
                position=int(row.position) if row else 0,
                head=head,
                events=int(row.events) if row else 0,
                updated_at=as_utc(row.updated_at) if row and row.updated_at else None,
                last_error=row.last_error if row else None,
                rate=rate,
                positions_per_second=per_second,
                rebuild_position=shadows.get(spec.name),
                quarantined=counts.get(spec.name, 0),
            )
        )
    return out
