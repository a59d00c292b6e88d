"""The write model's bookkeeping: what it may decide without reading the store.

A stream the model does not hold is decided as new, unless the model dropped it (LRU
eviction, or a refusal left its state provisional): those must be read first, or a hot
stream evicted once would be decided as new, refused at commit, and every request
decided after it refused with it (the storm B11 showed). A stream with an uncommitted
write is never evicted.
"""

import random
from concurrent.futures import Future
from datetime import UTC, datetime
from uuid import UUID, uuid4

from commands.appending import StreamsExist
from commands.write_model import MaybeStored, WriteModel
from domain.pairs import FollowState

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def state(stream_id: UUID | None = None) -> FollowState:
    return FollowState(stream_id or uuid4(), uuid4(), uuid4(), NOW)


def test_maybe_stored_holds_every_id_added_and_few_others():
    seen = MaybeStored(capacity=50_000)
    added = [uuid4() for _ in range(50_000)]
    for stream_id in added:
        seen.add(stream_id)

    assert all(stream_id in seen for stream_id in added)
    others = [uuid4() for _ in range(100_000)]
    false_positives = sum(stream_id in seen for stream_id in others)
    assert false_positives < 20  # ~0 expected at this fill (4 of 2^25 bits per id)


def test_maybe_stored_keeps_the_previous_generation_and_forgets_the_one_before():
    seen = MaybeStored(capacity=100)
    first = [uuid4() for _ in range(100)]
    second = [uuid4() for _ in range(100)]
    third = [uuid4() for _ in range(100)]
    for stream_id in first + second:
        seen.add(stream_id)
    assert all(s in seen for s in first + second)  # two generations

    for stream_id in third:
        seen.add(stream_id)
    assert all(s in seen for s in second + third)
    assert sum(s in seen for s in first) < 3  # cleared (false positives aside)


def test_an_evicted_stream_must_be_read_and_an_unknown_one_need_not():
    model = WriteModel(max_streams=100)
    states = [state() for _ in range(150)]
    with model.lock:
        for s in states:
            model.put(s)
        assert len(model) == 150  # a decision's own streams stay until it is queued
        model.trim()
        assert len(model) == 100
        assert [model.usable(s.id) for s in states[:50]] == [False] * 50  # evicted
        assert all(model.usable(s.id) for s in states[50:])  # held
        assert model.usable(uuid4())  # never seen: decided as new


def test_a_stream_with_an_uncommitted_write_is_not_evicted():
    model = WriteModel(max_streams=100)
    oldest = state()
    commit: Future[list[int]] = Future()
    with model.lock:
        model.put(oldest)
        model.wrote([oldest.id], commit)
        for _ in range(200):
            model.put(state())
        model.trim()
        assert model.stream(oldest.id) is oldest
        assert len(model) == 100

        commit.set_result([1])
        for _ in range(200):
            model.put(state())
        model.trim()
        assert model.stream(oldest.id) is None
        assert not model.usable(oldest.id)


def test_a_refused_write_drops_the_provisional_state_at_the_next_read():
    model = WriteModel(max_streams=100)
    kept, refused = state(), state()
    committed: Future[list[int]] = Future()
    failed: Future[list[int]] = Future()
    with model.lock:
        for s in (kept, refused):
            model.put(s)
        model.wrote([kept.id], committed)
        model.wrote([refused.id], failed)
        assert model.pending_write(refused.id) is failed

    committed.set_result([1])
    failed.set_exception(StreamsExist([refused.id]))  # from the appender's thread, no lock

    with model.lock:
        assert model.usable(kept.id) and model.stream(kept.id) is kept
        assert not model.usable(refused.id)  # must be read from the store again
        assert model.stream(refused.id) is None
        assert model.dropped == 1


def test_settling_many_finished_writes_drops_the_refused_ones_too():
    model = WriteModel(max_streams=100)
    states = [state() for _ in range(100)]
    futures: list[Future[list[int]]] = []
    with model.lock:
        for s in states:
            model.put(s)
            f: Future[list[int]] = Future()
            model.wrote([s.id], f)
            futures.append(f)
    refused = set(random.Random(3).sample(range(100), 10))
    for i, f in enumerate(futures):
        if i in refused:
            f.set_exception(StreamsExist([states[i].id]))
        else:
            f.set_result([i])
    with model.lock:
        model.wrote([uuid4()], Future())
        model.wrote([uuid4()], Future())  # over max_streams pending: settles the finished
        assert sorted(i for i, s in enumerate(states) if model.stream(s.id) is None) == sorted(
            refused
        )
