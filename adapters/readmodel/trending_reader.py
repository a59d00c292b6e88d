"""SqlTrendingReader: sliding windows summed from the per-minute buckets at query time."""

from datetime import datetime

import sqlalchemy as sa

from adapters.readmodel.tables import rm_trend_buckets, rm_trend_meta
from adapters.readmodel.trending_view import WATERMARK
from queries.trending import (
    WEIGHTS,
    TrendingItem,
    TrendingReader,
    acceleration,
    check_first,
    check_kind,
    check_series_minutes,
    check_window,
    minute_start,
    velocity,
)

B = rm_trend_buckets.c


def _watermark_subquery() -> sa.ScalarSelect[int]:
    return (
        sa.select(rm_trend_meta.c.value).where(rm_trend_meta.c.key == WATERMARK).scalar_subquery()
    )


class SqlTrendingReader(TrendingReader):
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def trending(self, kind: str, window_minutes: int, first: int) -> list[TrendingItem]:
        check_kind(kind)
        window = check_window(window_minutes)
        check_first(first)
        # One statement (the watermark is a scalar subquery), so the window bounds and the
        # buckets come from the same snapshot.
        wm = _watermark_subquery()
        current = B.minute > wm - window

        def in_window(column: sa.Column[int]) -> sa.ColumnElement[int]:
            return sa.func.coalesce(sa.func.sum(sa.case((current, column), else_=0)), 0)

        sums = {c: in_window(B[c]) for c in WEIGHTS}
        score = sum((WEIGHTS[c] * sums[c] for c in WEIGHTS), sa.literal(0))
        previous_views = sa.func.coalesce(sa.func.sum(sa.case((current, 0), else_=B.views)), 0)
        stmt = (
            sa.select(
                B.key,
                *(sums[c].label(c) for c in WEIGHTS),
                score.label("score"),
                previous_views.label("previous_views"),
            )
            .where(B.kind == kind, B.minute > wm - 2 * window, B.minute <= wm)
            .group_by(B.key)
            .having(sa.func.sum(sa.case((current, 1), else_=0)) > 0)
            .order_by(sa.desc("score"), B.key)
            .limit(first)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            TrendingItem(
                kind=kind,
                key=r.key,
                rank=rank,
                score=int(r.score),
                views=int(r.views),
                likes=int(r.likes),
                shares=int(r.shares),
                comments=int(r.comments),
                velocity=velocity(int(r.views), window),
                acceleration=acceleration(int(r.views), int(r.previous_views), window),
            )
            for rank, r in enumerate(rows, start=1)
        ]

    def series(self, kind: str, key: str, minutes: int) -> list[tuple[int, int]]:
        check_kind(kind)
        check_series_minutes(minutes)
        with self.engine.connect() as conn:
            wm = self._watermark_minute(conn)
            if wm is None:
                return []
            rows = conn.execute(
                sa.select(B.minute, B.views).where(
                    B.kind == kind, B.key == key, B.minute > wm - minutes, B.minute <= wm
                )
            )
            views = {int(r.minute): int(r.views) for r in rows}
        return [(m, views.get(m, 0)) for m in range(wm - minutes + 1, wm + 1)]

    def watermark(self) -> datetime | None:
        with self.engine.connect() as conn:
            wm = self._watermark_minute(conn)
        return None if wm is None else minute_start(wm)

    @staticmethod
    def _watermark_minute(conn: sa.Connection) -> int | None:
        value = conn.execute(
            sa.select(rm_trend_meta.c.value).where(rm_trend_meta.c.key == WATERMARK)
        ).scalar()
        return None if value is None else int(value)
