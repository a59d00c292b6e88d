"""ProjectionGroup: the runners of a process in one thread, sharing one read of the log.

Given a store holding a seeded workload, running every projection through a group must
give exactly the read models, checkpoints and positions that each runner gives alone
(whatever the batch size: a small one cuts the shared read, so runners sit at different
positions), decode each event once instead of once per runner, and hold back a failing
runner alone, never past the event it failed on.
"""

import contextlib
import pickle
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from adapters.bootstrap import Container
from adapters.projections import group as group_module
from adapters.projections.group import ProjectionGroup
from adapters.projections.registry import projection_specs
from adapters.projections.runner import ProjectionRunner
from adapters.readmodel import tables
from adapters.readmodel.db import create_read_engine, read_model_url, upgrade
from adapters.workload import WorkloadConfig, drive_application, generate

SKIP = {"projection_tracking"}  # compared by position and event count (updated_at differs)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """URLs of empty databases on one backend: the store's, then each read-model set's."""
    with contextlib.ExitStack() as stack:

        def new(name: str) -> str:
            if request.param == "sqlite":
                return f"sqlite:///{tmp_path}/{name}.db"
            server = request.getfixturevalue("pg_server")
            return stack.enter_context(server.fresh_database())

        yield new


@pytest.fixture
def store(backend: Callable[[str], str], container_factory: Any) -> Container:
    container = container_factory(backend("store"))
    config = WorkloadConfig(seed=5, creators=8, viewers=80, views_per_day=600)
    drive_application(container, generate(config).commands)
    return container


def read_models(store: Container, backend: Callable[[str], str], name: str) -> sa.Engine:
    url = read_model_url(store.settings.database_url, backend(name))
    engine = create_read_engine(url, writer=True)
    upgrade(engine)
    return engine


def runners(store: Container, engine: sa.Engine, batch_size: int) -> list[ProjectionRunner]:
    return [
        ProjectionRunner(spec, store.store, store.content.mapper, engine, batch_size=batch_size)
        for spec in projection_specs()
    ]


def positions_of(engine: sa.Engine) -> Callable[[], dict[str, int]]:
    def read() -> dict[str, int]:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(tables.projection_tracking))
            return {r.name: int(r.position) for r in rows}

    return read


def contents(engine: sa.Engine) -> dict[str, Any]:
    def row(r: Any) -> tuple[Any, ...]:
        return tuple(round(v, 6) if isinstance(v, float) else v for v in r)

    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            if table.name in SKIP:
                continue
            columns = [c for c in table.c if c.name != "updated_at"]
            out[table.name] = sorted(map(row, conn.execute(sa.select(*columns))), key=repr)
        out["tracking"] = sorted(
            (r.name, r.position, r.events)
            for r in conn.execute(sa.select(tables.projection_tracking))
        )
    return out


def test_a_group_builds_what_each_runner_builds_alone_decoding_each_event_once(
    store, backend, monkeypatch
):
    alone = read_models(store, backend, "alone")
    for runner in runners(store, alone, batch_size=1000):
        runner.run_until_idle()

    decoded: list[int] = []
    to_domain = store.content.mapper.to_domain_event

    def counting(n: Any) -> Any:
        decoded.append(n.id)
        return to_domain(n)

    monkeypatch.setattr(store.content.mapper, "to_domain_event", counting)
    grouped = read_models(store, backend, "grouped")
    group = ProjectionGroup(
        runners(store, grouped, batch_size=37),  # cuts the shared reads: positions differ
        store.store,
        store.content.mapper,
        positions_of(grouped),
        batch_size=37,
        lanes=2,  # two transactions per round on PostgreSQL (SQLite: one writer, one lane)
    )
    applied = group.run_until_idle()

    assert applied > 0
    assert contents(grouped) == contents(alone)
    head = store.head_position
    assert set(positions_of(grouped)().values()) == {head}
    assert len(decoded) == len(set(decoded))  # each event decoded once for all runners


def test_a_failing_runner_is_held_back_alone(store, backend, monkeypatch):
    engine = read_models(store, backend, "failing")
    members = runners(store, engine, batch_size=1000)
    stats = next(r for r in members if r.name == "stats")
    process = stats.spec.projection.process
    failures: list[str] = []

    def broken(event: Any, position: int, view: Any) -> None:
        raise RuntimeError("stats is broken")

    monkeypatch.setattr(stats.spec.projection, "process", broken)
    monkeypatch.setattr(stats, "on_error", failures.append)
    monkeypatch.setattr(group_module, "RETRY_SECONDS", 0.0)
    group = ProjectionGroup(
        members, store.store, store.content.mapper, positions_of(engine), batch_size=1000
    )
    group.run_until_idle()

    head = store.head_position
    positions = positions_of(engine)()
    assert positions.get("stats", 0) == 0  # its batch rolled back; nothing skipped
    assert {n: p for n, p in positions.items() if n != "stats"} == {
        r.name: head for r in members if r.name != "stats"
    }
    assert stats.last_error == "RuntimeError: stats is broken"
    assert failures and set(failures) == {stats.last_error}  # reported on every attempt

    # Once it works again it catches up on its own.
    monkeypatch.setattr(stats.spec.projection, "process", process)
    group.run_until_idle()
    assert positions_of(engine)()["stats"] == head
    assert stats.last_error is None


def test_online_models_resume_from_an_older_checkpoint_to_the_same_result(store, backend):
    # Reference: every projection from the first event to the head in one go.
    reference = read_models(store, backend, "reference")
    ProjectionGroup(
        runners(store, reference, batch_size=50), store.store, store.content.mapper,
        positions_of(reference), batch_size=50,
    ).run_until_idle()  # fmt: skip

    # The same, but the process "dies" between checkpoints: its runners checkpoint once
    # (after the first rounds) and never again, then a new process (new projection
    # objects: no state in memory) carries on from the tracked positions.
    engine = read_models(store, backend, "resumed")
    first = runners(store, engine, batch_size=50)
    group = ProjectionGroup(first, store.store, store.content.mapper, positions_of(engine),
                            batch_size=50)  # fmt: skip
    for runner in first:
        runner.checkpoint_seconds = 0.0  # the first round checkpoints...
    assert group.round()
    for runner in first:
        runner.checkpoint_seconds = 1e9  # ...and no round after it
    group.round()  # (rounds far behind read ten batches: the store is not done yet)
    checkpoints = checkpoint_positions(engine)
    tracked = positions_of(engine)()
    behind = [n for n, p in checkpoints.items() if p < tracked[n]]
    assert behind, "no checkpoint was left behind its position: nothing to replay"

    again = runners(store, engine, batch_size=50)  # fresh projections, as after a restart
    applied = ProjectionGroup(again, store.store, store.content.mapper, positions_of(engine),
                              batch_size=50).run_until_idle()  # fmt: skip
    assert applied > 0, "nothing was left to apply after the replay"

    # The same read models, also from the events applied after the replay (they read the
    # replayed state). Checkpoints compare by position: a pickle of equal state may share
    # objects differently (memo references), so its bytes are no test of the state.
    assert without_state(contents(engine)) == without_state(contents(reference))
    assert checkpoint_positions(engine) == checkpoint_positions(reference)


def reference(store: Container, backend: Callable[[str], str]) -> sa.Engine:
    """Every projection built by its runner alone, to the head."""
    engine = read_models(store, backend, "reference")
    for runner in runners(store, engine, batch_size=1000):
        runner.run_until_idle()
    return engine


def without_state(tables: dict[str, Any]) -> dict[str, Any]:
    out = dict(tables)
    out["projection_checkpoints"] = [row[:2] for row in out["projection_checkpoints"]]
    # The bandit's pickled policy compares by what it holds (its random generator's
    # state included), not by its bytes: a pickle of equal state may share objects
    # differently (memo references), e.g. after a replay from a checkpoint.
    out["rm_reco_bandit"] = [
        (row[0], state_of(pickle.loads(row[1])), *row[2:]) for row in out["rm_reco_bandit"]
    ]
    return out


def state_of(obj: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of an object graph by its path: attributes, items, random generators by
    their state, arrays by their bytes."""
    found: dict[str, Any] = {}
    if isinstance(obj, random.Random):
        found[path] = obj.getstate()
    elif isinstance(obj, np.ndarray):
        found[path] = (obj.dtype.str, obj.shape, obj.tobytes())
    elif isinstance(obj, np.random.RandomState):
        found.update(state_of(obj.get_state(), path))
    elif isinstance(obj, np.random.Generator):
        found.update(state_of(obj.bit_generator.state, path))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            found.update(state_of(value, f"{path}[{key!r}]"))
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            found.update(state_of(value, f"{path}[{i}]"))
    elif hasattr(obj, "__dict__"):
        for key, value in vars(obj).items():
            found.update(state_of(value, f"{path}.{key}"))
    elif type(obj).__eq__ is object.__eq__:  # compared by identity: by its pickle instead
        found[path] = pickle.dumps(obj)  # (a function by name, a native object by state)
    else:
        found[path] = obj
    return found


def checkpoint_positions(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(tables.projection_checkpoints))
        return {r.name: int(r.position) for r in rows}


def test_a_failure_in_the_shared_transaction_leaves_no_state_applied_twice(
    store, backend, monkeypatch
):
    # Rounds run optimistically without savepoints: a runner failing once rolls back
    # every runner's batch of that round, online models included, whose in-memory state
    # must then reload at the committed position (or the batch applied again would be
    # learnt twice). The result must be what each runner builds alone.
    alone = read_models(store, backend, "alone")
    for runner in runners(store, alone, batch_size=50):
        runner.run_until_idle()

    engine = read_models(store, backend, "flaky")
    members = runners(store, engine, batch_size=50)
    online = [i for i, r in enumerate(members) if r.checkpointed]
    later = members[online[0] + 1 :]  # after an online model in the round's order
    failed: list[ProjectionRunner] = []

    def fails_once(runner: ProjectionRunner) -> Callable[..., Any]:
        apply = runner.apply

        def wrapped(*args: Any) -> Any:
            if not failed:
                failed.append(runner)
                raise RuntimeError("transient")
            return apply(*args)

        return wrapped

    for runner in later:
        monkeypatch.setattr(runner, "apply", fails_once(runner))
    monkeypatch.setattr(group_module, "RETRY_SECONDS", 0.0)
    group = ProjectionGroup(members, store.store, store.content.mapper, positions_of(engine),
                            batch_size=50)  # fmt: skip
    for runner in members:
        runner.checkpoint_seconds = 0.0  # checkpoints in the rolled-back round too
    # Optimistic: fails, everything rolled back; then again in savepoints, where the
    # transient failure does not recur: every runner moves in this round.
    assert group.round()
    assert failed and failed[0].last_error is None and not group.failures
    assert positions_of(engine)()[members[online[0]].name] > 0
    group.run_until_idle()

    assert without_state(contents(engine)) == without_state(contents(alone))


@pytest.mark.postgres
def test_a_group_reconnects_when_the_connection_it_holds_is_lost(store, backend):
    if not store.settings.database_url.startswith("postgresql"):
        pytest.skip("the group holds a connection on PostgreSQL only")
    engine = read_models(store, backend, "held")
    members = runners(store, engine, batch_size=1000)
    group = ProjectionGroup(members, store.store, store.content.mapper, positions_of(engine))
    assert group.round()
    held = next(iter(group._held.values()))  # kept between rounds
    pid = held.connection.driver_connection.info.backend_pid
    with engine.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    # pg_terminate_backend only signals: wait until the backend is gone, or the group's
    # next round may still find it alive and the loss come later, anywhere. (A new
    # connection per look: pg_stat_activity is a snapshot for a transaction's duration.)
    deadline = time.monotonic() + 30
    alive = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
    while True:
        with engine.connect() as admin:
            if not admin.execute(alive, {"pid": pid}).scalar_one():
                break
        assert time.monotonic() < deadline, "the terminated backend never went away"
        time.sleep(0.05)  # polling; the deadline bounds the wait
    drive_application(store, generate(WorkloadConfig(seed=6, creators=2, viewers=5,
                                                     views_per_day=20)).commands)  # fmt: skip
    # The optimistic attempt fails on the lost connection; SQLAlchemy reconnects an
    # invalidated connection on its next use, where the round is applied again.
    group.run_until_idle()
    assert set(positions_of(engine)().values()) == {store.head_position}
    assert contents(engine) == contents(reference(store, backend))


def test_an_unreadable_checkpoint_is_replayed_from_the_first_event(store, backend):
    # Given online models at the head, whose checkpoints this code cannot read (as ones
    # pickled by an older version of the models' classes)
    engine = read_models(store, backend, "models")
    ProjectionGroup(runners(store, engine, batch_size=200), store.store, store.content.mapper,
                    positions_of(engine), batch_size=200).run_until_idle()  # fmt: skip
    with engine.begin() as conn:
        conn.execute(tables.projection_checkpoints.update().values(state=b"not a pickle"))
    # ...and more events after them
    more = WorkloadConfig(seed=6, creators=4, viewers=40, views_per_day=300)
    drive_application(store, generate(more).commands)

    # When new processes carry on
    again = runners(store, engine, batch_size=200)
    restarted = ProjectionGroup(again, store.store, store.content.mapper, positions_of(engine),
                                batch_size=200)  # fmt: skip
    restarted.run_until_idle()

    # Then each model replayed the log from the first event: the same state and read models
    # as models built from the first event in one go, readable checkpoints again, none
    # held back
    reference = read_models(store, backend, "reference")
    built = runners(store, reference, batch_size=200)
    ProjectionGroup(built, store.store, store.content.mapper, positions_of(reference),
                    batch_size=200).run_until_idle()  # fmt: skip
    assert not restarted.failures
    for mine, theirs in zip(again, built, strict=True):
        if mine.checkpointed:
            got = state_of(pickle.loads(mine.spec.projection.dump_state()))
            assert got == state_of(pickle.loads(theirs.spec.projection.dump_state())), mine.name
    assert without_state(contents(engine)) == without_state(contents(reference))
    with engine.connect() as conn:
        states = conn.execute(sa.select(tables.projection_checkpoints.c.state)).scalars().all()
    assert states and b"not a pickle" not in states
