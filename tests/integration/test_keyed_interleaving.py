"""Projections run by keyed consumer-group workers build what the single runner builds.

Kafka workers read a feed keyed by the relay's KeyResolver (video, creator, ...; the
sessions feed keys views by viewer): within one key the events keep the store's order,
across keys they arrive in any interleaving and any batch split.

Story: given a store filled with a seeded workload, when the stats, moderation, sessions
and trending projections apply its events (A) in global order in batches of 500 and (B) in
a random interleaving that keeps every key's order, in random batches (trending's events
stamped, as the relay stamps the feed, with the global watermark before them), then every
table each projection owns holds the same rows in A and B. And a creator whose video was
counted before its registration is no creator to readers until it is registered.

Floats are compared exactly (watch time is summed in whole milliseconds). No column of
these tables holds wall-clock time (rm_cases.updated_at is the time of the case's last
event).
"""

import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import Notification

from adapters.bootstrap import Container, bootstrap
from adapters.kafka.relay import KeyResolver
from adapters.projections.registry import OWNED_ROWS, projection_specs
from adapters.projections.runner import ProjectionSpec
from adapters.readmodel.stats_reader import SqlStatsReader
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from domain.creator import Creator
from domain.engagement import Engagement
from domain.video import Video
from projections.trending import WATERMARK_TOPICS, minute_of

# Three days: trending discards buckets older than two days (and ten minutes).
WORKLOAD = WorkloadConfig(
    seed=11, days=3, creators=25, viewers=300, views_per_day=2500, report_waves=4, bot_bursts=2
)
PROJECTIONS = ("stats", "moderation", "sessions", "trending")
GLOBAL_BATCH = 500
SHUFFLES = (1, 2, 3)
Applied = list[tuple[Notification, Any]]


@pytest.fixture(scope="module")
def workload() -> Iterator[tuple[Container, Applied]]:
    """One store for every test here: its notifications and their events, in order."""
    container = bootstrap(Settings(database_url="memory://"))
    try:
        drive_application(container, generate(WORKLOAD).commands)
        mapper = container.content.mapper
        notifications = container.store.recorder.select_notifications(start=1, limit=10**7)
        yield container, [(n, mapper.to_domain_event(n)) for n in notifications]
    finally:
        container.close()


def spec_named(name: str) -> ProjectionSpec:
    return next(s for s in projection_specs() if s.name == name)


def apply_batches(
    engine: sa.Engine,
    spec: ProjectionSpec,
    batches: list[Applied],
    stamps: dict[int, int | None] | None = None,
) -> None:
    """What the runner does per batch: one transaction, one view, prefetch, process, flush.
    With `stamps` (position -> watermark), what a Kafka worker does: hand the view each
    stamped event's watermark first."""
    for batch in batches:
        with engine.begin() as conn:
            view = spec.make_view(conn)
            prefetch = getattr(view, "prefetch", None)
            if prefetch is not None:
                prefetch([e for _, e in batch])
            for n, event in batch:
                if stamps is not None and n.id in stamps:
                    view.stamp(stamps[n.id])
                spec.projection.process(event, n.id, view)
            view.flush()


def relay_stamps(events: Applied) -> dict[int, int | None]:
    """The trending watermark before each watermark event, in global order (as the relay
    computes it)."""
    stamps: dict[int, int | None] = {}
    watermark: int | None = None
    for n, e in events:
        if n.topic in WATERMARK_TOPICS:
            stamps[n.id] = watermark
            minute = minute_of(e.occurred_at)
            watermark = minute if watermark is None else max(watermark, minute)
    return stamps


def in_order(events: Applied) -> list[Applied]:
    return [events[i : i + GLOBAL_BATCH] for i in range(0, len(events), GLOBAL_BATCH)]


def interleaved(
    events: Applied, key: Callable[[Notification, Any], str], seed: int
) -> list[Applied]:
    """A random interleaving of the per-key queues (each keeps its order), runs of 1..8
    events per pick, cut into random batches of 1..700 events."""
    rng = random.Random(seed)
    queues: dict[str, list[tuple[Notification, Any]]] = defaultdict(list)
    for n, e in events:
        queues[key(n, e)].append((n, e))
    pending = {k: q[::-1] for k, q in queues.items()}  # pop() from the end: the oldest
    keys = list(pending)
    out: Applied = []
    while keys:
        i = rng.randrange(len(keys))
        queue = pending[keys[i]]
        for _ in range(rng.randint(1, 8)):
            if not queue:
                break
            out.append(queue.pop())
        if not queue:
            keys[i] = keys[-1]
            keys.pop()
    assert len(out) == len(events)
    batches: list[Applied] = []
    while out:
        size = rng.choice((1, rng.randint(2, 50), rng.randint(50, 700)))
        batches.append(out[:size])
        out = out[size:]
    return batches


def rows_of(engine: sa.Engine, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every owned table, rows sorted (floats rounded, JSON as text)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for owned in OWNED_ROWS[name]:
            stmt = sa.select(owned.table)
            if owned.where is not None:
                stmt = stmt.where(owned.where(owned.table))
            out[owned.table.name] = sorted(
                (tuple(_plain(v) for v in row) for row in conn.execute(stmt)), key=repr
            )
    return out


def _plain(value: Any) -> Any:
    # Floats compared exactly: watch time is summed in whole milliseconds (bulk.ADD_MS).
    if isinstance(value, list | dict):
        return repr(value)
    return value


def differences(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> dict:
    """Per table that differs: row counts, and a few rows only in A / only in B."""
    out = {}
    for table in a:
        only_a = sorted(set(a[table]) - set(b[table]), key=repr)
        only_b = sorted(set(b[table]) - set(a[table]), key=repr)
        if only_a or only_b or len(a[table]) != len(b[table]):
            out[table] = {
                "rows": (len(a[table]), len(b[table])),
                "differing": (len(only_a), len(only_b)),
                "only_in_global": only_a[:3],
                "only_in_interleaved": only_b[:3],
            }
    return out


@pytest.mark.parametrize("name", PROJECTIONS)
def test_keyed_interleavings_build_what_global_order_builds(workload, read_urls, engines, name):
    container, applied = workload
    topics = set(spec_named(name).projection.topics)
    events = [(n, e) for n, e in applied if n.topic in topics]
    assert events
    resolver = KeyResolver(container.store)

    def key(n: Notification, e: Any) -> str:
        if name == "sessions" and isinstance(e, Engagement.Viewed):
            return f"viewer:{e.viewer_id}"
        return resolver.key(n)

    engine_a = engines(read_urls[0])
    apply_batches(engine_a, spec_named(name), in_order(events))
    expected = rows_of(engine_a, name)
    assert any(expected.values()), "the workload wrote nothing: the test would prove nothing"
    found = {}
    for seed in SHUFFLES:
        engine_b = engines(read_urls[1])
        with engine_b.begin() as conn:  # B again from empty for every shuffle
            for owned in OWNED_ROWS[name]:
                conn.execute(owned.delete())
        stamps = relay_stamps(events) if name == "trending" else None
        apply_batches(engine_b, spec_named(name), interleaved(events, key, seed), stamps)
        differ = differences(expected, rows_of(engine_b, name))
        if differ:
            found[seed] = differ
    assert found == {}, f"{len(events)} events; tables that differ per shuffle"


def test_a_creator_counted_before_its_registration_is_shown_once_registered(
    workload, read_urls, engines
):
    _, applied = workload
    spec = spec_named("stats")
    published = next((n, e) for n, e in applied if isinstance(e, Video.Published))
    creator = published[1].creator_id
    registered = next(
        (n, e)
        for n, e in applied
        if isinstance(e, Creator.Registered) and e.originator_id == creator
    )
    engine = engines(read_urls[0])
    reader = SqlStatsReader(engine)
    before = reader.summary().creators

    apply_batches(engine, spec, [[published]])  # the video's key ran ahead
    assert reader.creator(creator) is None
    assert reader.creators_by_ids([creator]) == {}
    assert reader.summary().creators == before

    apply_batches(engine, spec, [[registered]])
    shown = reader.creator(creator)
    assert shown is not None
    assert (shown.handle, shown.videos, shown.status) == (registered[1].handle, 1, "active")
    assert reader.summary().creators == before + 1
