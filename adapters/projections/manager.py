"""ProjectionManager: owns the runners of one process, their positions and change hub."""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import Mapper

from adapters.projections.group import ProjectionGroup
from adapters.projections.hub import ChangeHub
from adapters.projections.quarantine import quarantine_counts
from adapters.projections.registry import projection_specs
from adapters.projections.runner import ProjectionRunner
from adapters.readmodel.tables import projection_tracking
from commands.base import SharedStore


@dataclass(frozen=True)
class ProjectionHealth:
    position: int
    last_error: str | None  # the last failure, cleared by the next committed batch
    quarantined: int  # events moved past (adapters/projections/quarantine.py)


class ProjectionManager:
    def __init__(
        self,
        store: SharedStore,
        mapper: Mapper[Any],
        engine: sa.Engine,
        *,
        batch_size: int = 1000,
        poll_seconds: float = 0.5,
        remote: frozenset[str] = frozenset(),
    ) -> None:
        """`remote`: projections that other processes run (Kafka consumer groups,
        `kafka-project`): not run here, but waited on and reported from their rows."""
        self.engine = engine
        self.remote = sorted(remote)
        self.store = store
        self.hub = ChangeHub()
        self.runners = [
            ProjectionRunner(
                spec,
                store,
                mapper,
                engine,
                batch_size=batch_size,
                poll_seconds=poll_seconds,
                on_commit=self.hub.publish,
            )
            for spec in projection_specs()
            if spec.name not in remote
        ]
        # Live, the runners share one thread and one read of the log (group.py).
        self.group = ProjectionGroup(
            self.runners,
            store,
            mapper,
            self.positions,
            batch_size=batch_size,
            poll_seconds=poll_seconds,
        )
        self._started = False

    @property
    def names(self) -> list[str]:
        """Every projection: run here, then run elsewhere (`remote`)."""
        return [*(r.name for r in self.runners), *self.remote]

    def runner(self, name: str) -> ProjectionRunner:
        return next(r for r in self.runners if r.name == name)

    def live_positions(self) -> dict[str, int] | None:
        """Every runner's committed position without a query, when the runners run in this
        process (the hub hears of each commit); None otherwise (read `positions`)."""
        if not self._started or self.remote:
            return None
        known = self.hub.positions()
        if any(name not in known for name in self.names):
            return None  # not every runner has committed or announced itself yet
        return known

    def positions(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(projection_tracking.c.name, projection_tracking.c.position)
            )
            return {r.name: int(r.position) for r in rows}

    def health(self) -> dict[str, ProjectionHealth]:
        """Every runner's committed position, last error (set while its batches fail) and
        quarantined events, in one read."""
        with self.engine.connect() as conn:
            rows = {r.name: r for r in conn.execute(sa.select(projection_tracking))}
            counts = quarantine_counts(conn)
        out = {}
        for name in self.names:
            row = rows.get(name)
            out[name] = ProjectionHealth(
                position=int(row.position) if row else 0,
                last_error=row.last_error if row else None,
                quarantined=counts.get(name, 0),
            )
        return out

    def wait_for(
        self, position: int, timeout: float, names: list[str] | None = None
    ) -> dict[str, int]:
        return self.hub.wait_positions(self.positions, names or self.names, position, timeout)

    def run_until_idle(self) -> int:
        return self.group.run_until_idle()

    def start(self) -> None:
        if not self._started:
            stored = self.positions()
            for name in (r.name for r in self.runners):  # the hub starts where they are
                self.hub.publish(name, stored.get(name, 0), set())
            self.group.start()
            self._started = True

    def stop(self) -> None:
        self.group.stop()
        self._started = False
