"""The composition root: the only place that reads settings and wires components."""

import contextlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import psycopg
import sqlalchemy as sa

from adapters.alert_actions import AlertActionWorker
from adapters.eventstore import open_shared_store
from adapters.eventstore.listener import PostgresCommitListener
from adapters.follower import EventFollower
from adapters.projections.manager import ProjectionManager
from adapters.projections.poison import install_poison_reporting
from adapters.projections.registry import projection_specs
from adapters.readmodel.db import create_read_engine, read_model_url, upgrade
from adapters.settings import Settings
from commands.base import Clock, SharedStore, utc_now
from commands.content import ContentApplication
from commands.engagement import EngagementApplication
from commands.moderation import ModerationApplication
from commands.moderation_policy import ModerationPolicy


@dataclass
class Container:
    settings: Settings
    store: SharedStore
    content: ContentApplication
    engagement: EngagementApplication
    moderation: ModerationApplication
    policy: ModerationPolicy
    read_engine: sa.Engine  # queries (and tests) read through this one
    write_engine: sa.Engine  # projections write through this one
    projections: ProjectionManager
    followers: list[EventFollower] = field(default_factory=list)
    listener: PostgresCommitListener | None = None
    alert_worker: AlertActionWorker | None = None  # carries out alert actions (commands)
    _started: bool = False

    def start_background(self, *, projections: bool | None = None) -> None:
        """Start the event followers (policies) and, unless they run in their own worker
        process, the projections, in background threads."""
        if not self._started:
            if self.listener is not None:
                self.listener.start()
            for follower in self.followers:
                follower.start()
            run_projections = (
                self.settings.projections_in_process if projections is None else projections
            )
            if run_projections:
                self.projections.start()
            if self.alert_worker is not None:
                self.alert_worker.start()
            self._started = True

    def run_policies_until_idle(self) -> int:
        """Process all pending events synchronously (tests, CLI demo)."""
        return sum(f.run_until_idle() for f in self.followers)

    def run_projections_until_idle(self) -> int:
        """Bring every read model up to the head synchronously (tests, CLI)."""
        return self.projections.run_until_idle()

    @property
    def head_position(self) -> int:
        return self.store.recorder.max_notification_id() or 0

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.projections.stop()
        if self.alert_worker is not None:
            self.alert_worker.stop()
        for follower in self.followers:
            follower.stop()
        for app in (self.content, self.engagement, self.moderation, self.policy):
            app.close()
        with contextlib.suppress(Exception):
            self.store.close()
        self.read_engine.dispose()
        self.write_engine.dispose()


SETUP_LOCK = zlib.crc32(b"reelpulse-schema-setup")  # advisory lock key of `setup_lock`


def kafka_run_projections(settings: Settings) -> frozenset[str]:
    """The projections Kafka consumer groups run (`kafka-project`) when
    REELPULSE_KAFKA_PROJECTIONS is on: every keyed one (`Projection.partition_by`)."""
    if not settings.kafka_projections:
        return frozenset()
    return frozenset(s.name for s in projection_specs() if s.projection.partition_by != "global")


@contextlib.contextmanager
def setup_lock(database_url: str) -> Iterator[None]:
    """On PostgreSQL, one process at a time creates tables and runs migrations: processes
    started together (N `kafka-project` workers, a compose file's services) would otherwise
    race in CREATE ... IF NOT EXISTS and Alembic ("tuple concurrently updated"). A session
    advisory lock on the event store's database, released when the setup is done (or its
    process dies)."""
    if not database_url.startswith(("postgresql://", "postgres://")):
        yield
        return
    parts = urlsplit(database_url)
    with psycopg.connect(urlunsplit(("postgresql", parts.netloc, parts.path, "", "")),
                         autocommit=True, connect_timeout=10) as conn:  # fmt: skip
        conn.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))


def bootstrap(settings: Settings | None = None, *, clock: Clock = utc_now) -> Container:
    settings = settings or Settings()
    url = read_model_url(settings.database_url, settings.read_database_url)
    with setup_lock(settings.database_url):
        store = open_shared_store(
            settings.database_url,
            cache_size=settings.aggregate_cache_size,
            pool_size=settings.postgres_pool_size,
            pre_ping=settings.postgres_pre_ping,
        )
        read_engine = create_read_engine(url, pool_size=settings.postgres_pool_size)
        write_engine = create_read_engine(url, pool_size=settings.postgres_pool_size, writer=True)
        upgrade(write_engine)  # read-model schema (Alembic); idempotent
    content = ContentApplication(store, clock=clock)
    policy = ModerationPolicy(store, clock=clock)
    container = Container(
        settings=settings,
        store=store,
        content=content,
        engagement=EngagementApplication(
            store, clock=clock, max_streams=settings.write_model_streams
        ),
        moderation=ModerationApplication(store, clock=clock),
        policy=policy,
        read_engine=read_engine,
        write_engine=write_engine,
        projections=ProjectionManager(
            store,
            content.mapper,
            write_engine,
            batch_size=settings.projection_batch_size,
            poll_seconds=settings.policy_poll_seconds,
            remote=kafka_run_projections(settings),
        ),
    )
    install_poison_reporting(container.projections)  # a failing batch: status + alert
    channel = getattr(store.recorder, "channel_name", None)
    if settings.database_url.startswith(("postgresql://", "postgres://")) and channel:
        container.listener = PostgresCommitListener(settings.database_url, channel, store)
    container.followers.append(
        EventFollower(
            store,
            policy.mapper,
            policy,
            tracking_name=ModerationPolicy.tracking_name,
            topics=ModerationPolicy.topics,
            poll_seconds=settings.policy_poll_seconds,
        )
    )
    if settings.alert_actions_enabled:
        container.alert_worker = AlertActionWorker(
            container.moderation, write_engine, poll_seconds=settings.alert_actions_poll_seconds
        )
        container.projections.hub.add_listener(container.alert_worker.notify)
    return container
