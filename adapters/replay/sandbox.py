"""The sandbox a replay runs in: a fresh read-model database of its own, never the live one.

The sandbox is a SQLite file in a temporary directory, created by the same Alembic
migrations as the live read models, and written through the same SQL views and pure
projections (`adapters/projections/registry.py`), constructed with the run's parameters.
Events are applied like `ProjectionRunner` does it: one transaction per projection and
batch, only the events of the projection's topics, the position tracked in the same
transaction. Model state stays in memory for the whole run (no checkpoints: a replay
that is interrupted is thrown away, not resumed). Time is event time only, so the
projections' clocks are the events' own: a virtual clock driven by the history.

`Sandbox.close()` removes the directory; use it as a context manager.
"""

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from adapters.projections.registry import projection_specs
from adapters.projections.runner import ProjectionSpec, write_position
from adapters.readmodel.db import create_read_engine, upgrade
from adapters.readmodel.moderation_view import moderation_view_factory
from adapters.replay.params import REPORT_SECTIONS, SECTIONS
from projections.moderation_queue import ModerationQueueProjection
from projections.sentiment import SentimentProjection

Applied = tuple[int, str, Any]  # position, topic, decoded domain event


class SandboxError(ValueError):
    """An unknown projection, or parameters for a projection that is not run."""


def registered_names() -> list[str]:
    return [s.name for s in projection_specs()]


def replay_specs(names: Sequence[str], params: Mapping[str, Any]) -> list[ProjectionSpec]:
    """Fresh projections (registry order) for `names`, with their params from `params`.

    The registry builds projections with default parameters; a parameterised one is
    rebuilt here with the run's params. The moderation view scores with its projection's
    weights, so its view factory is rebuilt for the new projection too.
    """
    specs = {s.name: s for s in projection_specs()}
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise SandboxError(f"unknown projection {unknown[0]!r} (known: {', '.join(specs)})")
    out = []
    for name, spec in specs.items():
        if name not in names:
            continue
        if name in SECTIONS and name not in REPORT_SECTIONS:
            if isinstance(spec.projection, SentimentProjection):  # it also takes its scorer
                projection = SentimentProjection(spec.projection.scorer, params[name])
            else:
                projection = type(spec.projection)(params[name])
            make_view = spec.make_view
            if isinstance(projection, ModerationQueueProjection):
                make_view = moderation_view_factory(projection)
            spec = ProjectionSpec(projection, make_view)
        out.append(spec)
    return out


def check_sections(overrides: Mapping[str, Any], names: Sequence[str]) -> None:
    """Overrides for a projection this run does not include are a mistake: say so."""
    for section in overrides:
        if section not in REPORT_SECTIONS and section not in names:
            where = (
                "is not in --projections"
                if section in registered_names()
                else ("is not registered in this build")
            )
            raise SandboxError(f"parameters for {section!r}, but that projection {where}")


class Sandbox:
    def __init__(self, specs: Sequence[ProjectionSpec], *, label: str = "a") -> None:
        self.specs = list(specs)
        self.directory = Path(tempfile.mkdtemp(prefix=f"reelpulse-replay-{label}-"))
        try:
            url = f"sqlite:///{self.directory / 'read.db'}"
            self.engine = create_read_engine(url, writer=True)  # projections write here
            upgrade(self.engine)
            self.read_engine = create_read_engine(url)  # the report reads here
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        self._topics = {s.name: frozenset(s.projection.topics) for s in self.specs}
        self.events = {s.name: 0 for s in self.specs}

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def apply(self, batch: Sequence[Applied]) -> None:
        """One transaction per projection for the batch (as the live runner does)."""
        if not batch:
            return
        end = batch[-1][0]
        for spec in self.specs:
            topics = self._topics[spec.name]
            mine = [(p, e) for p, topic, e in batch if topic in topics]
            if not mine:
                continue
            with self.engine.begin() as conn:
                view = spec.make_view(conn)
                prefetch = getattr(view, "prefetch", None)
                if prefetch is not None:
                    prefetch([e for _, e in mine])
                for position, event in mine:
                    spec.projection.process(event, position, view)
                view.flush()
                write_position(conn, spec.name, end, len(mine))
            self.events[spec.name] += len(mine)

    def close(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
