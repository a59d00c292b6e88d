"""The event store contract: memory://, SQLite and PostgreSQL behave exactly alike.

Every test runs once per backend (the `store_url` fixture). Each reads as a story: given
a fresh store, when these commands run, then these positions, versions, replays and
reloaded aggregates. Tests that reopen the store skip memory://, which cannot survive it.
"""

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import Tracking

from adapters.bootstrap import Container
from commands.base import CommandResult, Idempotency, IdempotencyKeyReused
from commands.engagement import Signal
from commands.moderation_policy import ModerationPolicy
from domain.engagement import Engagement
from domain.errors import VersionConflict
from domain.video import VideoStatus

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
THREADS = 8
ROUNDS = 5


class InterleavingClock:
    """A fixed clock that can run one competing command inside the next command.

    Use cases read the clock after loading and checking their aggregate and before
    saving it, so a command run from here is a concurrent writer that always wins.
    """

    def __init__(self) -> None:
        self._competitor: Callable[[], Any] | None = None

    def interleave(self, competitor: Callable[[], Any]) -> None:
        self._competitor = competitor

    def __call__(self) -> datetime:
        competitor, self._competitor = self._competitor, None
        if competitor is not None:
            competitor()
        return NOW


@pytest.fixture
def clock() -> InterleavingClock:
    return InterleavingClock()


@pytest.fixture
def open_store(store_url, container_factory, clock) -> Callable[[], Container]:
    """Open (or reopen) a container on this test's store."""
    return lambda: container_factory(store_url, clock=clock)


@pytest.fixture
def container(open_store) -> Container:
    return open_store()


def skip_unless_persistent(container: Container) -> None:
    if container.settings.database_url == "memory://":
        pytest.skip("memory:// does not survive a reopen")


def register(container: Container, handle: str | None = None, **kwargs: Any) -> CommandResult:
    """A new creator; its handle is reserved in the same transaction (two events)."""
    handle = handle or f"ana{uuid4().hex[:8]}"  # handles are unique
    return container.content.register_creator(
        handle=handle, display_name=handle.title(), region="PT", **kwargs
    )


def publish(container: Container, creator_id: UUID) -> CommandResult:
    return container.content.publish_video(
        creator_id=creator_id,
        caption="first clip",
        hashtags=["#Dance"],
        sound_id=None,
        duration_seconds=15.0,
    )


def view(viewer_id: UUID, video_id: UUID) -> Signal:
    return Signal(kind="view", viewer_id=viewer_id, video_id=video_id, watch_seconds=3.0)


def recorded_events(container: Container) -> int:
    # Not head_position: PostgreSQL may skip notification ids of a rolled-back insert.
    return len(container.store.recorder.select_notifications(start=1, limit=10_000))


def run_concurrently(command: Callable[[int, int], CommandResult]) -> tuple[list, list]:
    """Run ROUNDS rounds of command(round, thread) on THREADS threads, each round started
    together, so that writers really collide. Returns ((round, thread), result) pairs
    of the successes and the exceptions of the failures."""
    barrier = threading.Barrier(THREADS, timeout=30)
    successes: list[tuple[tuple[int, int], CommandResult]] = []
    failures: list[BaseException] = []

    def work(thread: int) -> None:
        for round_ in range(ROUNDS):
            barrier.wait()
            try:
                result = command(round_, thread)
            except BaseException as e:
                failures.append(e)
            else:
                successes.append(((round_, thread), result))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "writers still running after 120s"
    return successes, failures


# -- (a) positions and versions ---------------------------------------------------------
def test_commands_return_increasing_positions_and_versions(container):
    content = container.content

    creator = register(container)
    updated = content.update_profile(creator.id, display_name="Ana B", region="es")
    video = publish(container, creator.id)
    edited = content.edit_caption(video.id, caption="new", hashtags=[], actor_id=creator.id)

    assert (creator.version, updated.version, video.version, edited.version) == (1, 2, 1, 2)
    # Position 1 is the creator's HandleReservation, saved with its Registered event.
    assert [r.position for r in (creator, updated, video, edited)] == [2, 3, 4, 5]
    assert container.head_position == 5
    assert content.get_creator(creator.id).version == 2
    assert content.get_video(video.id).caption == "new"


# -- (b) reloading ----------------------------------------------------------------------
def build_history(container: Container) -> dict[UUID, Any]:
    """One of every aggregate, each with a few events; returns the live aggregates."""
    content, engagement, moderation = container.content, container.engagement, container.moderation
    creator = register(container).id
    content.update_profile(creator, display_name="Ana B", region="ES")
    video = publish(container, creator).id
    content.edit_caption(video, caption="edited #tag", hashtags=["#Tag", "two"])
    viewer = uuid4()
    engagement.record(view(viewer, video))
    engagement.record(Signal(kind="like", viewer_id=viewer, video_id=video))
    engagement.record(Signal(kind="comment", viewer_id=viewer, video_id=video, text="nice"))
    engagement.record(Signal(kind="follow", viewer_id=viewer, creator_id=creator))
    case = moderation.report_video(video, reporter_id=viewer, reason="spam").id
    return {
        creator: content.get_creator(creator),
        video: content.get_video(video),
        Engagement.create_id(viewer, video): engagement.get_engagement(viewer, video),
        engagement.get_following(viewer, creator).id: engagement.get_following(viewer, creator),
        case: moderation.get_case(case),
    }


def test_aggregates_rebuilt_from_stored_events_equal_the_live_ones(container):
    live = build_history(container)

    repository = container.content.repository
    rebuilt = {i: repository.get(i, version=a.version) for i, a in live.items()}  # no cache

    assert {i: vars(a) for i, a in rebuilt.items()} == {i: vars(a) for i, a in live.items()}


def test_reopened_store_reloads_aggregates_identically(container, open_store):
    skip_unless_persistent(container)
    live = build_history(container)
    head = container.head_position
    container.close()

    reopened = open_store()

    assert reopened.head_position == head
    reloaded = {i: reopened.content.repository.get(i) for i in live}
    assert {i: vars(a) for i, a in reloaded.items()} == {i: vars(a) for i, a in live.items()}


# -- (c) idempotency --------------------------------------------------------------------
def test_retry_with_same_key_replays_the_first_result_and_records_nothing(container):
    key = Idempotency("req-1", "fingerprint-1")
    first = register(container, idempotency=key)
    head = container.head_position

    again = register(container, idempotency=key)

    assert first.replayed is False
    assert again == replace(first, replayed=True)
    assert container.head_position == head == first.position


def test_same_key_with_another_request_is_refused(container):
    register(container, idempotency=Idempotency("req-1", "fingerprint-1"))
    head = container.head_position

    with pytest.raises(IdempotencyKeyReused):
        register(container, handle="bob", idempotency=Idempotency("req-1", "fingerprint-2"))

    assert container.head_position == head


def test_retry_overtaken_by_its_twin_replays_the_twins_result(container, clock):
    key = Idempotency("req-1", "fingerprint-1")
    twin: list[CommandResult] = []
    clock.interleave(lambda: twin.append(register(container, "ana", idempotency=key)))

    result = register(container, "ana", idempotency=key)  # finds the twin's handle taken

    assert result == replace(twin[0], replayed=True)
    assert recorded_events(container) == 2  # Registered and its HandleReservation


def test_concurrent_retries_with_one_key_record_once(container):
    # Each round, every thread sends the same request with the round's key at once.
    def request(round_: int, _thread: int) -> CommandResult:
        return register(container, f"user{round_}", idempotency=Idempotency(f"req-{round_}", "fp"))

    successes, failures = run_concurrently(request)

    assert failures == []
    for round_ in range(ROUNDS):
        results = [r for (rnd, _t), r in successes if rnd == round_]
        assert len(results) == THREADS
        assert len({(r.id, r.version, r.position) for r in results}) == 1
        assert sum(not r.replayed for r in results) == 1
    assert recorded_events(container) == 2 * ROUNDS  # one Registered (+ handle) per key


def test_batch_retry_with_same_key_replays_the_first_batch(container):
    video = publish(container, register(container).id).id
    key = Idempotency("batch-1", "fingerprint-1")
    signals = [view(uuid4(), video), Signal(kind="like", viewer_id=uuid4(), video_id=uuid4())]
    first = container.engagement.ingest(signals, idempotency=key)
    head = container.head_position

    again = container.engagement.ingest(signals, idempotency=key)

    assert [i.status for i in first.items] == ["recorded", "rejected"]
    assert again == replace(first, replayed=True)
    assert container.head_position == head == first.position


def test_idempotency_survives_a_reopen(container, open_store):
    skip_unless_persistent(container)
    key = Idempotency("req-1", "fingerprint-1")
    first = register(container, idempotency=key)
    container.close()

    reopened = open_store()

    assert register(reopened, idempotency=key) == replace(first, replayed=True)
    with pytest.raises(IdempotencyKeyReused):
        register(reopened, idempotency=Idempotency("req-1", "fingerprint-2"))
    assert reopened.head_position == first.position


# -- (d) optimistic concurrency ---------------------------------------------------------
def test_concurrent_profile_updates_lose_no_update(container):
    creator = register(container).id
    content = container.content

    successes, failures = run_concurrently(
        lambda rnd, t: content.update_profile(creator, display_name=f"Name {rnd}.{t}", region="PT")
    )

    assert all(isinstance(e, VersionConflict) for e in failures), failures
    assert len(successes) + len(failures) == THREADS * ROUNDS
    assert successes, "no writer succeeded"
    # Every success got its own version: no two writers both appended version N.
    assert sorted(r.version for _n, r in successes) == list(range(2, 2 + len(successes)))
    final = content.get_creator(creator)
    assert final.version == 1 + len(successes)
    (rnd, thread), _result = max(successes, key=lambda s: s[1].version)
    assert final.display_name == f"Name {rnd}.{thread}"


def test_concurrent_views_on_one_new_stream_lose_no_update(container):
    video = publish(container, register(container).id).id
    viewer = uuid4()

    successes, failures = run_concurrently(
        lambda _rnd, _t: container.engagement.record(view(viewer, video))
    )

    assert all(isinstance(e, VersionConflict) for e in failures), failures
    assert successes, "no writer succeeded"
    stream = container.engagement.get_engagement(viewer, video)
    assert stream.views == len(successes)
    assert stream.version == 1 + len(successes)  # Started + one Viewed per success


def test_stale_expected_version_is_a_conflict(container):
    creator = register(container).id
    container.content.update_profile(creator, display_name="First", region="PT", expected_version=1)
    head = container.head_position

    with pytest.raises(VersionConflict):
        container.content.update_profile(
            creator, display_name="Stale", region="PT", expected_version=1
        )

    assert container.head_position == head
    assert container.content.get_creator(creator).display_name == "First"


def test_writer_overtaken_while_deciding(container, clock):
    content = container.content
    creator = register(container).id

    clock.interleave(lambda: content.update_profile(creator, display_name="Winner", region="PT"))
    with pytest.raises(VersionConflict):
        content.update_profile(creator, display_name="Loser", region="PT", expected_version=1)
    assert content.get_creator(creator).display_name == "Winner"

    # Without an expected version the command reloads and applies on top of the winner.
    clock.interleave(lambda: content.update_profile(creator, display_name="Winner 2", region="PT"))
    retried = content.update_profile(creator, display_name="Retried", region="PT")
    assert retried.version == 4
    assert content.get_creator(creator).display_name == "Retried"


def test_writer_overtaken_by_another_process(container, open_store, clock):
    skip_unless_persistent(container)
    other = open_store()
    creator = register(container).id
    container.content.get_creator(creator)  # both processes hold version 1 in their caches
    other.content.get_creator(creator)

    clock.interleave(
        lambda: other.content.update_profile(creator, display_name="Other", region="PT")
    )
    result = container.content.update_profile(creator, display_name="Mine", region="PT")

    assert result.version == 3
    assert other.content.get_creator(creator).display_name == "Mine"


# -- (e) the moderation policy ----------------------------------------------------------
def decide_removal(container: Container) -> tuple[UUID, UUID, UUID, CommandResult]:
    creator = register(container).id
    video = publish(container, creator).id
    case = container.moderation.report_video(video, reporter_id=uuid4(), reason="spam").id
    decided = container.moderation.decide_case(
        case, moderator_id=uuid4(), outcome="remove", policy="spam-policy"
    )
    return creator, video, case, decided


def test_removal_decision_removes_video_and_strikes_creator_exactly_once(container):
    creator, video, case, decided = decide_removal(container)
    recorder = container.store.recorder

    assert container.run_policies_until_idle() == 1

    assert container.content.get_video(video).status == VideoStatus.REMOVED
    assert container.content.get_creator(creator).strike_cases == [case]
    assert container.head_position == decided.position + 2  # Video.Removed, StrikeIssued
    assert recorder.max_tracking_id(ModerationPolicy.tracking_name) == decided.position

    head = container.head_position
    assert container.run_policies_until_idle() == 0
    # A redelivered decision (a second worker, a crash before the position moved on).
    (notification,) = recorder.select_notifications(start=decided.position, limit=1)
    event = container.policy.mapper.to_domain_event(notification)
    redelivered = Tracking(ModerationPolicy.tracking_name, decided.position)
    container.policy.process_event(event, redelivered)
    assert container.head_position == head
    assert container.content.get_creator(creator).strike_cases == [case]


def test_policy_position_survives_a_reopen(container, open_store):
    skip_unless_persistent(container)
    _creator, _video, _case, _decided = decide_removal(container)
    assert container.run_policies_until_idle() == 1
    head = container.head_position
    container.close()

    reopened = open_store()

    assert reopened.run_policies_until_idle() == 0
    assert reopened.head_position == head


# -- (f) snapshots ----------------------------------------------------------------------
def test_long_streams_are_snapshotted_and_reload_equal(container):
    video = publish(container, register(container).id).id
    viewer = uuid4()
    for _ in range(119):
        container.engagement.record(view(viewer, video))
    stream_id = Engagement.create_id(viewer, video)
    app = container.engagement

    assert app.snapshots is not None, "snapshotting is not enabled on the engagement app"
    assert [s.originator_version for s in app.snapshots.get(stream_id)] == [100]
    live = app.get_engagement(viewer, video)
    from_snapshot = app.repository.get(stream_id, version=120)  # snapshot 100 + 20 events
    from_events = project_aggregate(None, app.events.get(stream_id))
    assert (live.version, live.views) == (120, 119)
    assert vars(from_snapshot) == vars(live) == vars(from_events)


# -- (g) the notification log -----------------------------------------------------------
def test_notifications_read_back_in_global_order_without_gaps(container):
    creator = register(container)
    video = publish(container, creator.id)
    viewed = container.engagement.record(view(uuid4(), video.id))
    updated = container.content.update_profile(creator.id, display_name="Ana B", region="PT")
    *_ids, decided = decide_removal(container)
    container.run_policies_until_idle()

    notifications = container.store.recorder.select_notifications(start=1, limit=10_000)

    assert [n.id for n in notifications] == list(range(1, container.head_position + 1))
    assert container.head_position == 14  # two registrations, each with its handle
    by_position = {n.id: (n.originator_id, n.originator_version) for n in notifications}
    for result in (creator, video, viewed, updated, decided):
        assert by_position[result.position] == (result.id, result.version)
    decisions = container.store.recorder.select_notifications(
        start=1, limit=10_000, topics=ModerationPolicy.topics
    )
    assert [n.id for n in decisions] == [decided.position]
