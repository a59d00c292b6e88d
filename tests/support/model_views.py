"""Test doubles for the online-model projections' views, and a workload's event stream.

A view call may end with a callable and its arguments (a deferred output: the row as of
that event, the same until the projection reports that key again). `CallLog` makes the
call at once, as the projections computed their outputs before they deferred them;
`LastPerKey` keeps the last call per key and makes it at `flush`, as the SQL views do.
Both give the same rows when the projection keeps its promise.
"""

from collections.abc import Callable
from functools import cache
from typing import Any

from adapters.bootstrap import bootstrap
from adapters.readmodel.recount import stored_events
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_application, generate

# Two days, so that 24-hour labels arrive; bursts, waves and strikes so that every model
# and rule has work.
WORKLOAD = WorkloadConfig(
    seed=5, days=2, creators=25, viewers=400, views_per_day=1500, bot_bursts=3,
    report_waves=8, batch_window_seconds=600,
)  # fmt: skip


def _values(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments with a trailing deferred output (callable, *its arguments) evaluated."""
    for n, x in enumerate(args):
        if callable(x) and not isinstance(x, type):
            return (*args[:n], x(*args[n + 1 :]))
    return args


class NullView:
    """Accepts every view call and does nothing (what a replay after a restart uses)."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("__"):
            raise AttributeError(name)
        return _ignore

    def flush(self) -> set[str]:
        return set()


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


class CallLog:
    """Every call in order, deferred outputs evaluated at the call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, *_values(args), tuple(sorted(kwargs.items()))))

        return record

    def flush(self) -> set[str]:
        return set()


# What a SQL view keeps one row of per batch: by default the first argument.
KEY_ARGS = {"metric": 2, "seen": 2, "trend": 2, "shared": 0}


def key_of(name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if name == "raise_alert":
        return (name, args[0].id)
    return (name, *args[: KEY_ARGS.get(name, 1)])


class LastPerKey:
    """Per batch, the last call per (method, key); deferred outputs evaluated
    at flush. `batches` holds one dict per flush. With `eager`, outputs are evaluated at
    the call instead: the reference the deferred run must equal."""

    def __init__(self, *, eager: bool = False) -> None:
        self.eager = eager
        self.pending: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.batches: list[dict[tuple[Any, ...], tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any, **kwargs: Any) -> None:
            key = key_of(name, args)
            if name.startswith("forget_"):  # drops what the batch holds for that id
                self.pending = {k: v for k, v in self.pending.items() if k[1] != args[0]}
            values = _values(args) if self.eager else args
            self.pending[key] = (*values, tuple(sorted(kwargs.items())))

        return record

    def flush(self) -> set[str]:
        self.batches.append({k: (*_values(v[:-1]), v[-1]) for k, v in self.pending.items()})
        self.pending = {}
        return set()


@cache
def workload_events() -> tuple[tuple[int, Any], ...]:
    """(position, event) of every event the seeded WORKLOAD records, in log order."""
    container = bootstrap(Settings(database_url="memory://", alert_actions_enabled=False))
    try:
        drive_application(container, generate(WORKLOAD).commands)
        return tuple(stored_events(container.store, container.content.mapper))
    finally:
        container.close()


def events_for(projection: Any) -> list[tuple[int, Any]]:
    """The workload's events the projection subscribes to (as the runner filters them)."""
    from eventsourcing.utils import get_topic

    topics = set(projection.topics)
    return [(n, e) for n, e in workload_events() if get_topic(type(e)) in topics]
