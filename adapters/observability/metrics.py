"""Prometheus metrics. Counters are updated where things happen (HTTP middleware, the
event store recorder, error handlers); positions and lags are read at scrape time."""

import collections
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from adapters.projections.quarantine import quarantine_counts
from adapters.readmodel.tables import projection_tracking
from adapters.readmodel.times import as_utc

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter(
    "reelpulse_commands_total",
    "Commands handled, by route and outcome (ok, client_error, server_error)",
    ["command", "outcome"],
    registry=REGISTRY,
)
COMMAND_SECONDS = Histogram(
    "reelpulse_command_duration_seconds",
    "Command latency by route",
    ["command"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
EVENTS = Counter(
    "reelpulse_events_recorded_total",
    "Events written to the event store by this process, by event type",
    ["type"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "reelpulse_errors_total",
    "Error responses by HTTP status and error code",
    ["status", "code"],
    registry=REGISTRY,
)
GRAPHQL_OPERATIONS = Counter(
    "reelpulse_graphql_operations_total",
    "GraphQL operations executed",
    ["type"],
    registry=REGISTRY,
)


def count_recorded(stored_events: Any) -> None:
    # One labels() lookup per event type, not per event (a group holds thousands).
    for topic, n in collections.Counter(e.topic for e in stored_events).items():
        EVENTS.labels(topic.rsplit(":", 1)[-1]).inc(n)


class PositionCollector(Collector):
    """Projection (and Kafka relay) positions, lag in events and seconds, and rate."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self._last: dict[str, tuple[float, int]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        head = self.container.head_position
        now = datetime.now(UTC)
        position = GaugeMetricFamily(
            "reelpulse_projection_position", "Last committed position", labels=["projection"]
        )
        lag = GaugeMetricFamily(
            "reelpulse_projection_lag_events", "Events behind the store head", labels=["projection"]
        )
        lag_seconds = GaugeMetricFamily(
            "reelpulse_projection_lag_seconds",
            "Seconds since the projection last committed while behind the head",
            labels=["projection"],
        )
        rate = GaugeMetricFamily(
            "reelpulse_projection_rate_events_per_second",
            "Positions advanced per second since the previous scrape",
            labels=["projection"],
        )
        quarantined = GaugeMetricFamily(
            "reelpulse_projection_quarantined_events",
            "Events the projection could not apply and moved past (projection_quarantine)",
            labels=["projection"],
        )
        failing = GaugeMetricFamily(
            "reelpulse_projection_failing",
            "1 while the projection's batches fail (it retries), else 0",
            labels=["projection"],
        )
        with self.container.read_engine.connect() as conn:
            rows = list(conn.execute(sa.select(projection_tracking)))
            counts = quarantine_counts(conn)
        by_name = {r.name: r for r in rows}
        for name in self.container.projections.names:
            row = by_name.get(name)
            pos = int(row.position) if row else 0
            behind = max(head - pos, 0)
            position.add_metric([name], pos)
            lag.add_metric([name], behind)
            updated = as_utc(row.updated_at) if row and row.updated_at else None
            seconds = (now - updated).total_seconds() if (behind and updated) else 0.0
            lag_seconds.add_metric([name], max(seconds, 0.0))
            quarantined.add_metric([name], counts.get(name, 0))
            failing.add_metric([name], 1 if row is not None and row.last_error and behind else 0)
            t = time.monotonic()
            prev = self._last.get(name)
            rate.add_metric(
                [name], (pos - prev[1]) / (t - prev[0]) if prev and t > prev[0] else 0.0
            )
            self._last[name] = (t, pos)
        yield position
        yield lag
        yield lag_seconds
        yield rate
        yield quarantined
        yield failing
        head_metric = GaugeMetricFamily("reelpulse_store_head_position", "Event store head")
        head_metric.add_metric([], head)
        yield head_metric
        if self.container.settings.kafka_bootstrap_servers:
            relay = self.container.store.recorder.max_tracking_id("ReelPulse->KafkaRelay") or 0
            relay_lag = GaugeMetricFamily(
                "reelpulse_kafka_relay_lag_events", "Events not yet relayed"
            )
            relay_lag.add_metric([], max(head - relay, 0))
            yield relay_lag


def install_collector(container: Any) -> None:
    """Register (once per container) the scrape-time collector."""
    collector = PositionCollector(container)
    existing = getattr(REGISTRY, "_reelpulse_collector", None)
    if existing is not None:
        REGISTRY.unregister(existing)
    REGISTRY.register(collector)
    REGISTRY._reelpulse_collector = collector  # type: ignore[attr-defined]
