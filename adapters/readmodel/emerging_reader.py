"""Reads rm_emerging_trends: emerging keys first, then by lift (velocity over baseline)."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from adapters.readmodel.tables import rm_emerging_trends
from adapters.readmodel.times import as_utc

KINDS = ("hashtag", "sound")


@dataclass(frozen=True)
class EmergingTrendDTO:
    kind: str  # hashtag | sound
    key: str
    status: str  # emerging | steady
    velocity: float  # views per hour (event time)
    baseline: float  # views per hour the key's usual share of traffic would give now
    lift: float  # velocity / baseline (0 when there is no baseline)
    detections: int
    detected_at: datetime | None
    updated_at: datetime


def emerging_trends(
    conn: sa.Connection, kind: str | None = None, first: int = 20
) -> list[EmergingTrendDTO]:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    t = rm_emerging_trends
    lift = sa.case((t.c.baseline > 0, t.c.velocity / t.c.baseline), else_=0.0)
    query = (
        sa.select(t, lift.label("lift"))
        .order_by(sa.case((t.c.status == "emerging", 0), else_=1), lift.desc(), t.c.kind, t.c.key)
        .limit(max(0, first))
    )
    if kind is not None:
        query = query.where(t.c.kind == kind)
    return [
        EmergingTrendDTO(
            kind=r.kind,
            key=r.key,
            status=r.status,
            velocity=r.velocity,
            baseline=r.baseline,
            lift=float(r.lift),
            detections=r.detections,
            detected_at=as_utc(r.detected_at) if r.detected_at else None,
            updated_at=as_utc(r.updated_at),
        )
        for r in conn.execute(query)
    ]
