"""A Kafka relay killed (SIGKILL) again and again loses nothing and keeps per-key order.

Given a SQLite store filled with a seeded workload, when `reelpulse relay` processes with
small, random batch sizes are killed at random points of their catch-up at least ten
times, and a final `relay --once` runs to the head, then reading every topic from the
beginning shows: every stored event at least once; duplicates only as identical
re-deliveries (same event id, same payload, same record timestamp: the event time);
per key, positions increasing once re-deliveries are dropped; and every key on one
partition, named in the message key.
"""

import calendar
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from eventsourcing.persistence import Notification
from support.kafka_read import Record, read_back

from adapters.bootstrap import Container, bootstrap
from adapters.kafka.envelope import (
    Envelope,
    event_id,
    event_topic,
    family_of,
    feed_topic,
    trending_watermark_of,
    watermark_of,
)
from adapters.kafka.relay import TRACKING_NAME, KeyResolver
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate
from projections.trending import WATERMARK_TOPICS

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]  # each wait is bounded too

# ~6000 events; wide ingest windows (fewer, larger batches) only make filling faster.
WORKLOAD = WorkloadConfig(
    seed=11, creators=30, viewers=500, views_per_day=2000, batch_window_seconds=600
)
SEED = 4
KILLS = 6
BATCH_SIZES = (100, 300)  # each relay process draws its batch size from this range
PARTITIONS = 4
KILL_DELAY = (0.0, 0.06)  # seconds after the target is passed: lands inside a batch
TARGETS = (0.05, 0.85)  # kill targets, as fractions of the head
READY_TIMEOUT = 30.0  # seconds for one relay process to pass its target
ONCE_TIMEOUT = 60.0  # seconds for the final `relay --once`
POLL_SECONDS = 0.005


@dataclass
class RelayProcesses:
    """`reelpulse relay` subprocesses on one store; every one is killed at teardown."""

    url: str
    bootstrap_servers: str
    prefix: str
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, batch_size: int, *args: str) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        env = {
            **os.environ,
            "REELPULSE_DATABASE_URL": self.url,
            "REELPULSE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "REELPULSE_KAFKA_TOPIC_PREFIX": self.prefix,
            "REELPULSE_KAFKA_PARTITIONS": str(PARTITIONS),
            "REELPULSE_KAFKA_RELAY_BATCH_SIZE": str(batch_size),
            "REELPULSE_LOG_LEVEL": "warning",
        }
        with (
            (self.logs / f"relay-{n}.out").open("wb") as out,
            (self.logs / f"relay-{n}.err").open("wb") as err,
        ):
            proc = subprocess.Popen(
                [sys.executable, "-m", "adapters.cli", "relay", *args],
                env=env,
                stdout=out,
                stderr=err,
                cwd=self.logs,  # no stray .env or ./var from the repository
            )
        self.procs.append(proc)
        return proc

    def stderr(self, proc: subprocess.Popen[bytes]) -> str:
        path = self.logs / f"relay-{self.procs.index(proc)}.err"
        return path.read_text(errors="replace")[-3000:]

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store.db"


@pytest.fixture
def container(store_url: str) -> Iterator[Container]:
    """Our own view of the store: fills it, then watches the relay's tracking position."""
    c = bootstrap(Settings(database_url=store_url))
    yield c
    c.close()


@pytest.fixture
def relays(
    store_url: str, kafka_bootstrap: str, kafka_prefix: str, tmp_path: Path
) -> Iterator[RelayProcesses]:
    procs = RelayProcesses(store_url, kafka_bootstrap, kafka_prefix, tmp_path)
    yield procs
    procs.kill_all()


def relay_position(container: Container) -> int:
    return container.store.recorder.max_tracking_id(TRACKING_NAME) or 0


def kill_past(
    relays: RelayProcesses, container: Container, rng: random.Random, target: int
) -> tuple[int, int]:
    """Start a relay with a random batch size, SIGKILL it a random moment after its stored
    position passed `target`; return (batch size, position it had stored)."""
    batch_size = rng.randint(*BATCH_SIZES)
    delay = rng.uniform(*KILL_DELAY)
    proc = relays.start(batch_size)
    deadline = time.monotonic() + READY_TIMEOUT
    while relay_position(container) <= target:
        if proc.poll() is not None:
            pytest.fail(f"relay exited ({proc.returncode}) before the kill:\n{relays.stderr(proc)}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"relay did not pass {target} in {READY_TIMEOUT:g}s "
                f"(at {relay_position(container)}):\n{relays.stderr(proc)}"
            )
        time.sleep(POLL_SECONDS)  # polling a condition, bounded by the deadline
    time.sleep(delay)  # so that kills land in every phase of a batch
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    return batch_size, relay_position(container)


def event_time_ms(n: Notification) -> int:
    """The stored event's time in ms since the epoch (occurred_at, else its timestamp)."""
    state = orjson.loads(n.state)
    when = datetime.fromisoformat((state.get("occurred_at") or state["timestamp"])["_data_"])
    return calendar.timegm(when.utctimetuple()) * 1000 + when.microsecond // 1000


def stored_notifications(container: Container, head: int) -> dict[int, Notification]:
    notifications = container.store.recorder.select_notifications(start=1, limit=head + 1)
    return {n.id: n for n in notifications}


def test_killed_relay_delivers_every_event_at_least_once_in_key_order(
    container: Container,
    relays: RelayProcesses,
    kafka_bootstrap: str,
    kafka_prefix: str,
) -> None:
    started = time.perf_counter()
    stats = drive_application(container, generate(WORKLOAD).commands)
    assert stats.rejected_fraction < 0.01, stats.summary()
    head = container.head_position
    assert head > 20 * BATCH_SIZES[1], "too few events for mid-stream kills"
    filled = time.perf_counter()

    rng = random.Random(SEED)
    targets = sorted(rng.sample(range(int(head * TARGETS[0]), int(head * TARGETS[1])), KILLS))
    kills: list[tuple[int, int]] = []
    last = 0
    for target in targets:
        batch_size, at = kill_past(relays, container, rng, max(target, last))
        assert last < at < head, f"kill at {at} was not mid-stream (previous {last}, head {head})"
        kills.append((batch_size, at))
        last = at
    killed = time.perf_counter()

    final = relays.start(rng.randint(*BATCH_SIZES), "--once")
    try:
        code = final.wait(ONCE_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`relay --once` did not finish in {ONCE_TIMEOUT:g}s")
    assert code == 0, relays.stderr(final)
    assert relay_position(container) == head
    assert container.head_position == head  # the relay appended nothing
    caught_up = time.perf_counter()

    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=kafka_prefix)
    records = read_back(settings, PARTITIONS)
    read = time.perf_counter()

    stored = stored_notifications(container, head)
    assert sorted(stored) == list(range(1, head + 1))  # SQLite positions have no gaps
    keys = KeyResolver(container.store)  # one uninterrupted pass: what every key must be
    expected_key = {position: keys.key(n) for position, n in sorted(stored.items())}

    first: dict[int, Record] = {}
    partition_of_key: dict[bytes, set[int]] = defaultdict(set)
    positions_in_partition: dict[tuple[str, int, bytes], list[int]] = defaultdict(list)
    for r in records:
        envelope = Envelope.from_bytes(r.value)
        n = stored.get(envelope.position)
        assert n is not None, f"{envelope.position} is not a stored position"
        # The message is the stored event, on its family's topic, under its key.
        assert envelope.event_id == event_id(n.originator_id, n.originator_version)
        assert (envelope.topic, envelope.stream_version) == (n.topic, n.originator_version)
        assert envelope.payload == orjson.loads(n.state)
        assert r.topic == event_topic(kafka_prefix, family_of(n.topic))
        assert r.key == envelope.key.encode() == expected_key[n.id].encode()
        assert r.headers["reelpulse-event-id"] == str(envelope.event_id).encode()
        # The record timestamp is the event time (CreateTime), not the relay's clock.
        assert (r.timestamp_type, r.timestamp) == (0, event_time_ms(n)), envelope.position
        # (b) a duplicate is an exact re-delivery: same event id, same payload, same bytes.
        original = first.setdefault(envelope.position, r)
        if original is not r:
            again = Envelope.from_bytes(original.value)
            assert (again.event_id, again.payload) == (envelope.event_id, envelope.payload)
            assert (original.value, original.headers) == (r.value, r.headers)
            assert original.timestamp == r.timestamp
        partition_of_key[r.key].add(r.partition)
        positions_in_partition[(r.topic, r.partition, r.key)].append(envelope.position)

    # (a) every stored event reached its topic at least once.
    lost = sorted(set(stored) - set(first))
    assert not lost, f"{len(lost)} stored events never published, e.g. positions {lost[:20]}"
    # (c) per key and partition, in offset order: positions only go back to re-deliver.
    for (topic, partition, key), positions in positions_in_partition.items():
        deduplicated = list(dict.fromkeys(positions))
        assert all(a < b for a, b in itertools.pairwise(deduplicated)), (
            f"{topic}[{partition}] key {key!r} out of order: {positions[:40]}"
        )
    # (d) one partition per key, in every topic (same partitioner, same partition count).
    split = {key: parts for key, parts in partition_of_key.items() if len(parts) > 1}
    assert not split, f"keys on several partitions: {dict(list(split.items())[:5])}"

    # (e) the video feed's trending watermarks survive the kills: the first copy of each
    # watermark event carries the largest minute of those before it in global order (what
    # the single-process runner computes); a re-delivery may carry a later one (the
    # relay stores the watermark before its position) and is a duplicate to its readers.
    feed = read_back(settings, PARTITIONS, [feed_topic(kafka_prefix, "video")])
    exact: dict[int, int | None] = {}
    watermark: int | None = None
    for position, n in sorted(stored.items()):
        if n.topic in WATERMARK_TOPICS:
            exact[position] = watermark
            minute = event_time_ms(n) // 60_000
            watermark = minute if watermark is None else max(watermark, minute)
    stamped_first: dict[int, int | None] = {}
    for r in feed:
        if watermark_of(list(r.headers.items())) is not None:
            continue  # a batch's marker
        position = Envelope.from_bytes(r.value).position
        stamped, minute = trending_watermark_of(list(r.headers.items()))
        assert stamped == (position in exact), position
        if not stamped:
            continue
        if position not in stamped_first:
            stamped_first[position] = minute
        else:
            assert minute is not None and (exact[position] or 0) <= minute, position
    assert stamped_first == exact

    duplicates = len(records) - len(first)
    print(  # shown with -s: where the kills landed and where the time went
        f"\nrelay crash: head {head}; {len(kills)} kills (batch size, position): "
        f"{'; '.join(f'{b}@{p}' for b, p in kills)}; {len(records)} messages, "
        f"{duplicates} duplicates; fill {filled - started:.1f}s, kills "
        f"{killed - filled:.1f}s, --once {caught_up - killed:.1f}s, read "
        f"{read - caught_up:.1f}s, checks {time.perf_counter() - read:.1f}s"
    )
