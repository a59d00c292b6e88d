"""Reads of the bot detector's read model (rm_video_anomaly)."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa

from adapters.readmodel.tables import rm_video_anomaly
from adapters.readmodel.times import as_utc


@dataclass(frozen=True)
class VideoAnomalyDTO:
    video_id: UUID
    scored_at: datetime  # start of the last scored minute (event time)
    score: float  # its anomaly score in [0, 1]
    max_score: float
    max_score_at: datetime
    minutes: int  # active minutes scored so far
    vector: dict[str, float]  # the last minute's features


def video_anomaly(conn: sa.Connection, video_id: UUID) -> VideoAnomalyDTO | None:
    row = conn.execute(
        sa.select(rm_video_anomaly).where(rm_video_anomaly.c.video_id == video_id)
    ).first()
    if row is None:
        return None
    return VideoAnomalyDTO(
        video_id=row.video_id,
        scored_at=as_utc(row.scored_at),
        score=row.score,
        max_score=row.max_score,
        max_score_at=as_utc(row.max_score_at),
        minutes=row.minutes,
        vector=dict(row.vector),
    )
