"""The bare FastAPI baselines of B3, B6, B7 and B10, served by uvicorn like `reelpulse serve`.

    python -m benchmarks.baseline_app --database-url URL --port P

POST /insert              one INSERT of an event-shaped row (the request body as its
                          state) + COMMIT: the least a durable command can do (B3).
GET  /plain/video/{id}    the video page's data (video, stats, creator) as plain JSON,
                          read with ReelPulse's own readers from the same tables (B6).
GET  /plain/trending      the trending list (kind, window minutes, first) the same way (B7,
                          B10).
GET  /plain/summary       the platform summary: `SqlStatsReader.summary` (the reader the
                          GraphQL summary uses), the projections' positions and the store's
                          head, the same fields as GraphQL's `summary` (B10).

Endpoints are sync `def`s, as ReelPulse's routes are, so both run in the same thread pool.
"""

import argparse
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, Request
from psycopg_pool import ConnectionPool

from adapters.readmodel.db import create_read_engine, read_model_url
from adapters.readmodel.stats_reader import SqlStatsReader
from adapters.readmodel.trending_reader import SqlTrendingReader

TABLE = """
CREATE TABLE IF NOT EXISTS baseline_events (
    originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text,
    state bytea, notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version));
CREATE UNIQUE INDEX IF NOT EXISTS baseline_events_nid ON baseline_events (notification_id);
"""


def create_app(database_url: str) -> FastAPI:
    pool = ConnectionPool(database_url, min_size=4, max_size=10, open=True)
    with pool.connection() as conn:
        conn.execute(TABLE)
    engine = create_read_engine(read_model_url(database_url, None), pool_size=10)
    stats, trending = SqlStatsReader(engine), SqlTrendingReader(engine)
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/insert")
    async def insert(request: Request) -> dict[str, Any]:
        body = await request.body()
        return await _in_thread(_insert, pool, body)

    @app.get("/plain/video/{video_id}")
    def video(video_id: UUID) -> dict[str, Any] | None:
        v = stats.video(video_id)
        if v is None:
            return None
        c = stats.creator(v.creator_id)
        return {
            "id": str(v.video_id),
            "caption": v.caption,
            "hashtags": list(v.hashtags),
            "soundId": v.sound_id,
            "durationSeconds": v.duration_seconds,
            "status": v.status,
            "publishedAt": v.published_at.isoformat(),
            "stats": {
                "views": v.views,
                "uniqueViewers": v.unique_viewers,
                "likes": v.likes,
                "shares": v.shares,
                "comments": v.comments,
                "totalWatchSeconds": v.watch_seconds,
                "averageWatchSeconds": v.average_watch_seconds,
                "completionRate": v.completion_rate,
                "engagementRate": v.engagement_rate,
            },
            "creator": None
            if c is None
            else {"handle": c.handle, "displayName": c.display_name, "followers": c.followers},
        }

    @app.get("/plain/trending")
    def trending_list(kind: str = "video", window: int = 1440, first: int = 100) -> list[Any]:
        return [
            {
                "rank": i.rank,
                "key": i.key,
                "score": i.score,
                "views": i.views,
                "likes": i.likes,
                "shares": i.shares,
                "comments": i.comments,
                "velocity": i.velocity,
                "acceleration": i.acceleration,
            }
            for i in trending.trending(kind, window, first)
        ]

    @app.get("/plain/summary")
    def summary() -> dict[str, Any]:
        s = stats.summary()
        with engine.connect() as conn:
            positions = {r.name: int(r.position) for r in conn.execute(POSITIONS)}
            head = conn.execute(HEAD).scalar_one()
        return {
            "creators": s.creators,
            "suspendedCreators": s.suspended_creators,
            "videos": s.videos,
            "removedVideos": s.removed_videos,
            "views": s.views,
            "likes": s.likes,
            "shares": s.shares,
            "comments": s.comments,
            "watchHours": s.watch_seconds / 3600,
            "openCases": s.open_cases,
            "headPosition": int(head),
            "projectionPositions": positions,
        }

    return app


POSITIONS = sa.text("SELECT name, position FROM projection_tracking")
HEAD = sa.text("SELECT coalesce(max(notification_id), 0) FROM reelpulse_events")


def _insert(pool: ConnectionPool, body: bytes) -> dict[str, Any]:
    with pool.connection() as conn:  # commits on exit
        row = conn.execute(
            "INSERT INTO baseline_events (originator_id, originator_version, topic, state) "
            "VALUES (%s, 1, 'baseline:Inserted', %s) RETURNING notification_id",
            (uuid4(), body),
        ).fetchone()
    return {"position": row[0] if row else 0}


async def _in_thread(fn: Any, *args: Any) -> Any:
    from fastapi.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline_app", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.database_url), host="127.0.0.1", port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
