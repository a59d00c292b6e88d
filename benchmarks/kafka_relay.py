"""Kafka relay throughput, as a ratio to a raw aiokafka producer sending the same messages.

    .venv/bin/python -m benchmarks.kafka_relay [--events N] [--repeat K]

Fills a SQLite event store with about N generated events (adapters.workload), then, K
times and interleaved (the order rotates each round), measures in events/s:

  relay          `Relay(...).run(until_caught_up=True)` publishing the whole store: read
                 batches, resolve keys, build envelopes, send, await acks, store the
                 position. Each round relays a fresh copy of the store into fresh topics.
  raw producer   the baseline: an AIOKafkaProducer with the relay's options (acks=all,
                 same linger and batch size) sending the same pre-built envelope bytes,
                 keys and headers to the same topics, awaiting every ack at the end.
  raw per batch  the same, awaiting the acks after every relay batch as the relay must
                 before it stores its position: the part of the gap due to that barrier.

If adapters/kafka/ingest.py provides an `IngestWorker`, also (same rounds):

  ingest         an IngestWorker consuming --ingest-messages engagement signals from the
                 ingest topic into a fresh store copy (group join and final idle poll
                 excluded: timed from its first batch to its last commit);
  direct ingest  the baseline: the same signals stored in-process with
                 `EngagementApplication.ingest`, in batches of the worker's batch size.

Prints medians and ratios (target: relay / raw producer >= 0.6). Uses --bootstrap, or
REELPULSE_TEST_KAFKA_BOOTSTRAP, or starts a Tansu broker (tests/support/kafka.py).
"""

import argparse
import asyncio
import contextlib
import importlib.util
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiokafka
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from adapters.bootstrap import bootstrap
from adapters.eventstore import open_shared_store
from adapters.kafka.client import ensure_topics, producer
from adapters.kafka.envelope import FAMILIES, build_envelope, event_topic, family_of, ingest_topic
from adapters.kafka.relay import KeyResolver, Relay
from adapters.settings import Settings
from adapters.workload import (
    Command,
    EngagementBatch,
    PublishVideo,
    RegisterCreator,
    WorkloadConfig,
    drive_application,
    generate,
)
from adapters.workload.drivers import batch_item
from commands.engagement import Signal

TARGET_RATIO = 0.6
console = Console(stderr=True)
Run = Callable[[], Awaitable[float]]


@dataclass(frozen=True)
class Message:
    family: str  # of the event topic; "" for the ingest topic
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class Result:
    events: int
    repeat: int
    rates: dict[str, list[float]] = field(default_factory=dict)  # events/s per round
    skipped: dict[str, str] = field(default_factory=dict)  # measurement -> why

    def median(self, name: str) -> float:
        return statistics.median(self.rates[name])

    @property
    def ratio(self) -> float:
        """The relay's median throughput over the raw producer's."""
        return self.median("relay") / self.median("raw producer")

    @property
    def ratios(self) -> dict[str, float]:
        out = {
            "relay / raw producer": self.ratio,
            "relay / raw per batch": self.median("relay") / self.median("raw per batch"),
        }
        if "ingest" in self.rates:
            out["ingest / direct ingest"] = self.median("ingest") / self.median("direct ingest")
        return out


# -- the stores -------------------------------------------------------------------------------
def workload(events: int) -> list[Command]:
    """A seeded workload with more than `events` events (about 1.5 events per view)."""
    config = WorkloadConfig(seed=7, views_per_day=max(events, 500), batch_window_seconds=600)
    return generate(config).commands


def fill(path: Path, commands: Sequence[Command], events: int) -> int:
    """Drive the commands into a SQLite store at `path` until its head reaches `events`."""
    container = bootstrap(Settings(database_url=f"sqlite:///{path}"))
    try:
        with Progress(
            TextColumn("[bold]filling the store"), BarColumn(), MofNCompleteColumn(),
            console=console,
        ) as progress:  # fmt: skip
            task = progress.add_task("fill", total=events)

            def until_head() -> Iterator[Command]:
                for command in commands:
                    head = container.head_position
                    progress.update(task, completed=min(head, events))
                    if head >= events:
                        return
                    yield command

            stats = drive_application(container, until_head())
        console.print(f"store filled: {stats.summary()}")
        return container.head_position
    finally:
        container.close()


def copy_store(template: Path, target: Path) -> str:
    """A consistent copy of a store (no relay position yet), as a database URL."""
    with (
        contextlib.closing(sqlite3.connect(template)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
    return f"sqlite:///{target}"


def prebuilt_messages(url: str, head: int) -> list[Message]:
    """What the relay publishes for the store at `url`, built once, outside any timing."""
    store = open_shared_store(url)
    try:
        keys = KeyResolver(store)
        messages = []
        for n in store.recorder.select_notifications(start=1, limit=head + 1):
            envelope = build_envelope(n, keys.key(n))
            messages.append(
                Message(
                    family_of(n.topic), envelope.key.encode(), envelope.to_bytes(),
                    envelope.headers(),
                )
            )  # fmt: skip
        return messages
    finally:
        store.factory.close()


# -- the relay --------------------------------------------------------------------------------
@dataclass
class Bench:
    bootstrap_servers: str
    workdir: Path
    template: Path
    head: int
    messages: list[Message]
    partitions: int
    batch_size: int
    rounds: int = 0

    def settings(self, url: str = "memory://") -> Settings:
        """Fresh topics for every measurement, so no run reads or appends to another's."""
        self.rounds += 1
        return Settings(
            database_url=url,
            kafka_bootstrap_servers=self.bootstrap_servers,
            kafka_topic_prefix=f"bench{self.rounds}x{uuid.uuid4().hex[:8]}",
            kafka_partitions=self.partitions,
            kafka_relay_batch_size=self.batch_size,
            # The baseline sends each event's public envelope once: so does the relay here
            # (the projection feeds: benchmarks/capacity.py's "relay" row).
            kafka_projection_feeds=False,
        )

    def store_copy(self, template: Path) -> str:
        return copy_store(template, self.workdir / f"store-{self.rounds}.db")

    async def relay(self) -> float:
        settings = self.settings(self.store_copy(self.template))
        await ensure_topics(settings)  # topic creation is not what we measure
        store = open_shared_store(settings.database_url)
        try:
            started = time.perf_counter()
            stats = await Relay(settings, store).run(until_caught_up=True)
            seconds = time.perf_counter() - started
        finally:
            store.factory.close()
        assert stats.published == self.head, (stats.published, self.head)
        await self.check_delivered(settings)
        return self.head / seconds

    async def raw(self, ack_every: int | None) -> float:
        settings = self.settings()
        await ensure_topics(settings)
        topics = {f: event_topic(settings.kafka_topic_prefix, f) for f in FAMILIES}
        kafka = producer(settings)  # the relay's producer options
        started = time.perf_counter()
        await kafka.start()
        try:
            acks = []
            for i, m in enumerate(self.messages, 1):
                acks.append(
                    await kafka.send(topics[m.family], value=m.value, key=m.key, headers=m.headers)
                )
                if ack_every and i % ack_every == 0:
                    await asyncio.gather(*acks)
                    acks.clear()
            await asyncio.gather(*acks)
        finally:
            await kafka.stop()
        seconds = time.perf_counter() - started
        await self.check_delivered(settings)
        return len(self.messages) / seconds

    async def check_delivered(self, settings: Settings) -> None:
        topics = [event_topic(settings.kafka_topic_prefix, f) for f in FAMILIES]
        delivered = await messages_on(self.bootstrap_servers, topics)
        assert delivered == self.head, f"{delivered} messages on the broker, {self.head} events"


async def messages_on(bootstrap_servers: str, topics: list[str]) -> int:
    """Messages in the topics (outside any timing): the sum of the partitions' high
    watermarks, fetched from each partition's tail, because Tansu 0.6 answers
    ListOffsets(latest) with the last record batch's base offset + 1."""
    kafka = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await kafka.start()
    try:
        await kafka.topics()
        tps = [
            aiokafka.TopicPartition(topic, p)
            for topic in topics
            for p in kafka.partitions_for_topic(topic) or ()
        ]
        kafka.assign(tps)
        listed = await kafka.end_offsets(tps)
        tails = [tp for tp in tps if listed[tp] > 0]
        for tp in tails:
            kafka.seek(tp, listed[tp] - 1)
        deadline = time.monotonic() + 30
        while any(kafka.highwater(tp) is None for tp in tails):
            assert time.monotonic() < deadline, "no high watermark in 30 s"
            await kafka.getmany(*tails, timeout_ms=200)
        return sum(kafka.highwater(tp) or 0 for tp in tails)
    finally:
        await kafka.stop()


# -- ingestion (when adapters/kafka/ingest.py exists) ------------------------------------------
@dataclass
class IngestBench:
    bench: Bench
    template: Path  # creators and videos only: the signals are what is ingested
    signals: list[Signal]
    messages: list[Message]

    async def worker(self) -> float:
        from adapters.kafka.ingest import IngestWorker

        settings = self.bench.settings(self.bench.store_copy(self.template))
        topic = ingest_topic(settings.kafka_topic_prefix)
        await ensure_topics(settings)
        kafka = producer(settings)
        await kafka.start()
        try:
            acks = [await kafka.send(topic, value=m.value, key=m.key) for m in self.messages]
            await asyncio.gather(*acks)
        finally:
            await kafka.stop()
        container = await asyncio.to_thread(bootstrap, settings)
        try:
            worker = IngestWorker(settings, container, group_id=f"bench-{uuid.uuid4().hex}")
            times: list[tuple[float, float]] = []  # (end of batch, busy seconds so far)
            stats = await worker.run(
                until_idle=True,
                idle_timeout_ms=500,
                on_batch=lambda s: times.append((time.perf_counter(), s.busy_seconds)),
            )
        finally:
            container.close()
        handled = stats.recorded + stats.duplicates + stats.dead_lettered
        assert stats.consumed == handled == len(self.messages), stats.summary()
        assert stats.dead_lettered <= len(self.messages) // 100, stats.summary()
        # From the start of the first batch's handling (its end minus its busy time: the
        # group join is over) to the end of the last one.
        began = times[0][0] - times[0][1]
        return stats.consumed / (times[-1][0] - began)

    async def direct(self) -> float:
        settings = self.bench.settings(self.bench.store_copy(self.template))
        container = await asyncio.to_thread(bootstrap, settings)
        try:
            size = settings.kafka_ingest_batch_size
            started = time.perf_counter()
            for i in range(0, len(self.signals), size):
                container.engagement.ingest(self.signals[i : i + size])
            seconds = time.perf_counter() - started
        finally:
            container.close()
        return len(self.signals) / seconds


def ingest_bench(bench: Bench, commands: Sequence[Command], count: int) -> IngestBench:
    """A store with the workload's creators and videos, and its first `count` signals."""
    catalog = [c for c in commands if isinstance(c, RegisterCreator | PublishVideo)]
    template = bench.workdir / "catalog.db"
    container = bootstrap(Settings(database_url=f"sqlite:///{template}"))
    try:
        drive_application(container, catalog)
    finally:
        container.close()
    signals = [s for c in commands if isinstance(c, EngagementBatch) for s in c.signals][:count]
    messages = [
        Message("", str(s.video_id or s.creator_id).encode(), orjson.dumps(batch_item(s)), [])
        for s in signals
    ]
    return IngestBench(bench, template, signals, messages)


def ingest_runs(bench: Bench, commands: Sequence[Command], count: int) -> dict[str, Run]:
    """The ingest measurements; raises LookupError saying why there are none."""
    if count <= 0:
        raise LookupError("--ingest-messages 0")
    if importlib.util.find_spec("adapters.kafka.ingest") is None:
        raise LookupError("adapters/kafka/ingest.py does not exist")
    from adapters.kafka import ingest

    if not hasattr(ingest, "IngestWorker"):
        raise LookupError("adapters.kafka.ingest has no IngestWorker")
    ib = ingest_bench(bench, commands, count)
    return {"ingest": ib.worker, "direct ingest": ib.direct}


# -- the rounds and the report ----------------------------------------------------------------
async def measure(runs: dict[str, Run], repeat: int, result: Result) -> None:
    names = list(runs)
    for r in range(repeat):
        order = names[r % len(names) :] + names[: r % len(names)]  # interleaved, rotating
        for name in order:
            rate = await runs[name]()
            result.rates.setdefault(name, []).append(rate)
            console.print(f"round {r + 1}/{repeat}: {name:<14} {rate:>10,.0f} events/s")


def table(result: Result) -> str:
    rows = ["| measurement | median events/s | rounds (events/s) |", "|---|---:|---|"]
    for name, rates in result.rates.items():
        rounds = ", ".join(f"{r:,.0f}" for r in rates)
        rows.append(f"| {name} | {statistics.median(rates):,.0f} | {rounds} |")
    rows += ["", "| ratio | median | target |", "|---|---:|---:|"]
    for name, value in result.ratios.items():
        target = f">= {TARGET_RATIO}" if name == "relay / raw producer" else ""
        rows.append(f"| {name} | {value:.2f} | {target} |")
    rows += [f"\n{name}: skipped ({why})" for name, why in result.skipped.items()]
    return "\n".join(rows)


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs, {memory:.0f} GiB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}, aiokafka {aiokafka.__version__}"
    )


@contextlib.contextmanager
def broker(bootstrap_servers: str | None) -> Iterator[str]:
    if bootstrap_servers:
        yield bootstrap_servers
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from support.kafka import kafka_broker  # the env var's cluster, or a Tansu broker

    with kafka_broker() as servers:
        yield servers


def parse(argv: list[str] | None) -> argparse.Namespace:
    defaults = Settings.model_fields
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.kafka_relay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=50_000, help="events in the store")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults["kafka_relay_batch_size"].default,
        help="relay batch size (default: the setting's default)",
    )
    parser.add_argument(
        "--partitions", type=int, default=defaults["kafka_partitions"].default, help="per topic"
    )
    parser.add_argument(
        "--ingest-messages",
        type=int,
        default=10_000,
        help="signals per ingest measurement (0: skip ingestion)",
    )
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: see above)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Result:
    args = parse(argv)
    started = time.perf_counter()
    commands = workload(args.events)
    with (
        tempfile.TemporaryDirectory(prefix="reelpulse-bench-") as tmp,
        broker(args.bootstrap) as servers,
    ):
        workdir = Path(tmp)
        template = workdir / "store.db"
        head = fill(template, commands, args.events)
        bench = Bench(
            bootstrap_servers=servers,
            workdir=workdir,
            template=template,
            head=head,
            messages=prebuilt_messages(copy_store(template, workdir / "read.db"), head),
            partitions=args.partitions,
            batch_size=args.batch_size,
        )
        result = Result(events=head, repeat=args.repeat)
        runs: dict[str, Run] = {
            "relay": bench.relay,
            "raw producer": lambda: bench.raw(ack_every=None),
            "raw per batch": lambda: bench.raw(ack_every=bench.batch_size),
        }
        try:
            runs |= ingest_runs(bench, commands, args.ingest_messages)
        except LookupError as e:
            result.skipped["ingest"] = str(e)
        asyncio.run(measure(runs, args.repeat, result))
    print(
        f"\nKafka relay benchmark: {head} events, {args.repeat} interleaved rounds, relay "
        f"batch {args.batch_size}, {args.partitions} partitions, broker {servers}\n{machine()}\n"
    )
    print(table(result))
    verdict = "meets" if result.ratio >= TARGET_RATIO else "MISSES"
    print(
        f"\nrelay at {result.ratio:.2f} of the raw producer: {verdict} the {TARGET_RATIO} target "
        f"({time.perf_counter() - started:.0f}s in all)"
    )
    return result


if __name__ == "__main__":
    main()
