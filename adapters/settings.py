"""All configuration, read once from REELPULSE_* environment variables (or a .env file)."""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite:///var/reelpulse.db"


class Settings(BaseSettings):
    """ReelPulse settings. Every field maps to REELPULSE_<FIELD_NAME>."""

    model_config = SettingsConfigDict(env_prefix="REELPULSE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        DEFAULT_SQLITE_URL,
        description="Event store: sqlite:///<path>, memory:// (in-process, lost on exit) or "
        "postgresql://user:password@host:port/dbname[?schema=name]",
    )
    read_database_url: str | None = Field(
        None,
        description="Read-model database (SQLAlchemy URL). Default: beside the event store "
        "(a sibling *-read.db file for SQLite, the same database for PostgreSQL)",
    )
    projections_in_process: bool = Field(
        True, description="Run projections inside `serve` (false: run `reelpulse project`)"
    )
    projection_batch_size: int = Field(1000, ge=1, description="Events per read-model transaction")
    consistency_timeout_seconds: float = Field(
        5.0, ge=0, le=60, description="Longest wait for projections to reach a consistency token"
    )
    development: bool = Field(
        True, description="Development mode: the GraphQL query page and field suggestions on"
    )
    host: str = Field("127.0.0.1", description="Interface `reelpulse serve` binds to")
    port: int = Field(8000, ge=1, le=65535, description="Port `reelpulse serve` listens on")
    server: Literal["uvicorn", "granian"] = Field(
        "uvicorn",
        description="HTTP server of `reelpulse serve`: uvicorn (httptools + uvloop, the "
        "faster here under wrk) or granian (embedded); both run one event loop in one process",
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest accepted request body; larger ones get 413"
    )
    batch_max_items: int = Field(
        1000, ge=1, le=100_000, description="Most engagement items per batch ingest request"
    )
    aggregate_cache_size: int = Field(
        10_000, ge=0, description="Aggregates kept in memory by the command side (0 = off)"
    )
    write_model_streams: int = Field(
        200_000,
        ge=100,
        description="Viewer-video and follow streams the engagement write model keeps in "
        "memory (about 0.5 KB each); others are read from the store when touched",
    )
    postgres_pool_size: int = Field(10, ge=1, description="PostgreSQL connections per process")
    postgres_pre_ping: bool = Field(
        False,
        description="Check each event-store connection with a round trip before use (off: "
        "a connection broken by a restart fails once and the store retries on another)",
    )
    policy_poll_seconds: float = Field(
        0.5,
        gt=0,
        description="Fallback poll interval for event followers (commits in this "
        "process wake them at once)",
    )
    auth_enabled: bool = Field(True, description="Require credentials on /v1 and /graphql")
    dev_api_key: str | None = Field(
        None, description="A development admin key accepted as is (rp_<id>_<secret>)"
    )
    jwt_secret: str | None = Field(
        None, description="HS256 secret for bearer JWTs (JWTs off when unset)"
    )
    jwt_audience: str = Field("reelpulse", description="Required `aud` of bearer JWTs")
    graphql_cache_entries: int = Field(
        4096,
        ge=0,
        description="Answers the GraphQL response cache keeps (0 = off: every query runs)",
    )
    graphql_cache_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Bytes of answers the GraphQL response cache keeps"
    )
    graphql_max_cost: int = Field(
        10_000,
        ge=1,
        description="Largest estimated cost of a GraphQL request (a batch: the sum of its "
        "operations); each field counts 1, a field's selection once per item its `first` "
        "asks for (adapters/graphql/cost.py). Costlier requests are refused before they run",
    )
    graphql_introspection: bool | None = Field(
        None,
        description="Answer GraphQL introspection (__schema, __type). Default: on in "
        "development mode, off otherwise",
    )
    rate_limit_per_minute: int = Field(
        6000, ge=1, description="Commands + GraphQL operations per key per minute"
    )
    alert_actions_enabled: bool = Field(
        True, description="Carry out alert actions (escalate, auto_flag) in this process"
    )
    alert_actions_poll_seconds: float = Field(
        2.0, gt=0, description="How often the alert-action worker looks for pending actions"
    )
    demo_live_events_per_second: float = Field(
        20.0,
        ge=0,
        le=10_000,
        description="Live generated traffic `serve --demo` sends through the applications "
        "with event time now, in events per second on average (the demo's daily cycle shapes "
        "it); 0 = off (as `serve --demo --no-live`)",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error")
    log_json: bool = Field(True, description="Structured JSON logs (false: plain text)")
    readiness_max_lag_events: int = Field(
        10_000, ge=0, description="/readyz fails when a projection is further behind than this"
    )
    kafka_bootstrap_servers: str | None = Field(
        None, description="Kafka bootstrap servers (host:port,...); Kafka is off when unset"
    )
    kafka_partitions: int = Field(6, ge=1, description="Partitions of topics ReelPulse creates")
    kafka_replication_factor: int = Field(1, ge=1, description="Replication of created topics")
    kafka_idempotent_producer: bool = Field(
        False,
        description="Idempotent producer (enable on real Kafka clusters; the Tansu test "
        "broker does not support it). Delivery is at-least-once either way; consumers "
        "dedup by event id",
    )
    kafka_topic_prefix: str = Field("reelpulse", description="Prefix of every topic name")
    kafka_projection_feeds: bool = Field(
        True,
        description="The relay also publishes the projection feeds (`<prefix>.feed.video.v1`,"
        " `.feed.viewer.v1`) that `kafka-project` workers read (docs/scaling.md)",
    )
    kafka_projections: bool = Field(
        False,
        description="serve leaves the keyed projections (stats, moderation, trending, sessions) to "
        "`kafka-project` workers, and waits on their positions (docs/scaling.md)",
    )
    kafka_session_timeout_ms: int = Field(
        10_000,
        ge=1_000,
        description="Consumer-group session timeout: how long a worker that died unseen "
        "(kill -9, a lost host) holds its partitions before the group moves them",
    )
    kafka_relay_batch_size: int = Field(2000, ge=1, description="Events per relay batch")
    kafka_ingest_batch_size: int = Field(500, ge=1, description="Messages per ingest batch")
    kafka_ingest_retention_ms: int = Field(
        7 * 24 * 3600 * 1000,
        ge=-1,
        description="retention.ms of the ingest topic when ReelPulse creates it (-1: kept)",
    )
    kafka_dead_letter_retention_ms: int = Field(
        30 * 24 * 3600 * 1000,
        ge=-1,
        description="retention.ms of the dead-letter topic when ReelPulse creates it (-1: kept)",
    )

    def sqlite_path(self) -> Path | None:
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return None
