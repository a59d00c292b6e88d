"""ModerationPolicy: decisions and appeal rulings take effect on the Video and the Creator.

Given commands recorded through the applications, when the policy follows the log, then
these new events are in the store. Runs on the in-memory store.
"""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from adapters.bootstrap import Container, bootstrap
from adapters.settings import Settings
from commands.base import CommandResult
from commands.moderation_policy import ModerationPolicy
from domain.creator import Creator
from domain.errors import InvariantViolation
from domain.moderation import ModerationCase
from domain.video import Video, VideoStatus

from .given_when_then import rejected

MODERATOR_ID = UUID(int=700)


@pytest.fixture
def container() -> Iterator[Container]:
    container = bootstrap(Settings(database_url="memory://"))
    yield container
    container.close()


# -- story steps ---------------------------------------------------------------------------


def register(container: Container) -> UUID:
    return container.content.register_creator(handle="ann", display_name="Ann", region="SE").id


def publish(container: Container, creator_id: UUID) -> UUID:
    return container.content.publish_video(
        creator_id=creator_id, caption="clip", hashtags=[], sound_id=None, duration_seconds=10
    ).id


def report(container: Container, video_id: UUID) -> UUID:
    return container.moderation.report_video(video_id, reporter_id=uuid4(), reason="spam").id


def decide(container: Container, case_id: UUID, outcome: str) -> CommandResult:
    return container.moderation.decide_case(
        case_id, moderator_id=MODERATOR_ID, outcome=outcome, policy="spam-1"
    )


def appeal(container: Container, case_id: UUID, creator_id: UUID) -> CommandResult:
    return container.moderation.appeal_case(case_id, appellant_id=creator_id, statement="not spam")


def resolve(container: Container, case_id: UUID, resolution: str) -> CommandResult:
    return container.moderation.resolve_appeal(
        case_id, moderator_id=MODERATOR_ID, resolution=resolution
    )


def reported_and_decided(container: Container, creator_id: UUID, outcome: str) -> CommandResult:
    """A new video of the creator, reported and decided; the policy has not run yet."""
    return decide(container, report(container, publish(container, creator_id)), outcome)


def events_after(container: Container, position: int) -> list[Any]:
    """Every event recorded after `position`, in log order."""
    notifications = container.store.recorder.select_notifications(start=position + 1, limit=1000)
    return [container.policy.mapper.to_domain_event(n) for n in notifications]


def types_after(container: Container, position: int) -> list[type]:
    return [type(e) for e in events_after(container, position)]


def eventually(container: Container, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Wait (bounded) for a condition, waking on every commit to the store."""
    deadline = time.monotonic() + timeout
    generation = container.store.commit_generation
    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        generation = container.store.wait_for_commit(generation, min(remaining, 0.05))
    return True


# -- decisions -----------------------------------------------------------------------------


def test_a_decision_alone_changes_neither_video_nor_creator(container):
    creator_id = register(container)

    decision = reported_and_decided(container, creator_id, "remove")

    assert types_after(container, decision.position) == []


def test_remove_removes_the_video_and_strikes_the_creator(container):
    creator_id = register(container)
    decision = reported_and_decided(container, creator_id, "remove")
    case = container.moderation.get_case(decision.id)

    assert container.run_policies_until_idle() == 1

    removed, strike = events_after(container, decision.position)
    assert (type(removed), removed.originator_id, removed.case_id) == (
        Video.Removed,
        case.video_id,
        case.id,
    )
    assert (type(strike), strike.originator_id, strike.case_id, strike.reason) == (
        Creator.StrikeIssued,
        creator_id,
        case.id,
        "spam-1",
    )
    assert container.content.get_video(case.video_id).status == VideoStatus.REMOVED
    assert container.content.get_creator(creator_id).active_strikes == 1


def test_restrict_restricts_the_video_without_a_strike(container):
    creator_id = register(container)
    decision = reported_and_decided(container, creator_id, "restrict")

    container.run_policies_until_idle()

    assert types_after(container, decision.position) == [Video.Restricted]
    assert container.content.get_creator(creator_id).active_strikes == 0


def test_keep_changes_nothing(container):
    decision = reported_and_decided(container, register(container), "keep")

    container.run_policies_until_idle()

    assert types_after(container, decision.position) == []


def test_keep_on_a_reopened_case_lifts_an_earlier_restriction(container):
    restricted = reported_and_decided(container, register(container), "restrict")
    container.run_policies_until_idle()
    video_id = container.moderation.get_case(restricted.id).video_id
    report(container, video_id)  # reopens the case

    kept = decide(container, restricted.id, "keep")
    container.run_policies_until_idle()

    assert types_after(container, kept.position) == [Video.Restored]
    assert container.content.get_video(video_id).status == VideoStatus.ACTIVE


def test_three_removals_suspend_the_creator_who_then_cannot_publish(container):
    creator_id = register(container)
    for _ in range(2):
        reported_and_decided(container, creator_id, "remove")
        container.run_policies_until_idle()

    third = reported_and_decided(container, creator_id, "remove")
    container.run_policies_until_idle()

    assert types_after(container, third.position) == [
        Video.Removed,
        Creator.StrikeIssued,
        Creator.Suspended,
    ]
    rejected(lambda: publish(container, creator_id), InvariantViolation, "creator_suspended")


# -- appeals -------------------------------------------------------------------------------


def test_an_overturned_appeal_restores_the_video_and_withdraws_the_strike(container):
    creator_id = register(container)
    decision = reported_and_decided(container, creator_id, "remove")
    container.run_policies_until_idle()
    appeal(container, decision.id, creator_id)

    ruling = resolve(container, decision.id, "overturned")
    container.run_policies_until_idle()

    restored, withdrawn = events_after(container, ruling.position)
    assert (type(restored), restored.case_id) == (Video.Restored, decision.id)
    assert (type(withdrawn), withdrawn.case_id) == (Creator.StrikeWithdrawn, decision.id)
    assert container.content.get_creator(creator_id).active_strikes == 0


def test_an_overturned_appeal_below_three_strikes_reinstates(container):
    creator_id = register(container)
    decisions = [reported_and_decided(container, creator_id, "remove") for _ in range(3)]
    container.run_policies_until_idle()
    assert container.content.get_creator(creator_id).suspended
    appeal(container, decisions[0].id, creator_id)

    ruling = resolve(container, decisions[0].id, "overturned")
    container.run_policies_until_idle()

    assert types_after(container, ruling.position) == [
        Video.Restored,
        Creator.StrikeWithdrawn,
        Creator.Reinstated,
    ]
    publish(container, creator_id)  # allowed again


def test_an_overturned_restriction_restores_without_touching_strikes(container):
    creator_id = register(container)
    decision = reported_and_decided(container, creator_id, "restrict")
    container.run_policies_until_idle()
    appeal(container, decision.id, creator_id)

    ruling = resolve(container, decision.id, "overturned")
    container.run_policies_until_idle()

    assert types_after(container, ruling.position) == [Video.Restored]


def test_an_upheld_appeal_changes_nothing(container):
    creator_id = register(container)
    decision = reported_and_decided(container, creator_id, "remove")
    container.run_policies_until_idle()
    appeal(container, decision.id, creator_id)

    ruling = resolve(container, decision.id, "upheld")
    container.run_policies_until_idle()

    assert types_after(container, ruling.position) == []
    assert container.content.get_creator(creator_id).active_strikes == 1


# -- exactly once --------------------------------------------------------------------------


def test_running_the_policy_again_creates_no_duplicates(container):
    creator_id = register(container)
    decision = reported_and_decided(container, creator_id, "remove")
    container.run_policies_until_idle()
    head = container.head_position

    assert container.run_policies_until_idle() == 0
    assert container.head_position == head
    assert types_after(container, decision.position) == [Video.Removed, Creator.StrikeIssued]


def test_a_decision_processed_again_at_the_same_position_is_ignored(container):
    decision = reported_and_decided(container, register(container), "remove")
    container.run_policies_until_idle()
    head = container.head_position
    [notification] = container.store.recorder.select_notifications(
        start=decision.position, limit=1, stop=decision.position
    )
    decided = container.policy.mapper.to_domain_event(notification)
    assert isinstance(decided, ModerationCase.Decided)

    container.policy.process_event(
        decided, Tracking(ModerationPolicy.tracking_name, decision.position)
    )

    assert container.head_position == head


def test_a_decision_redelivered_from_elsewhere_changes_nothing(container):
    # Even without the tracking record, the domain's no-op rules keep a decision from
    # removing twice or striking twice.
    creator_id = register(container)
    decision = reported_and_decided(container, creator_id, "remove")
    container.run_policies_until_idle()
    head = container.head_position
    [notification] = container.store.recorder.select_notifications(
        start=decision.position, limit=1, stop=decision.position
    )
    decided = container.policy.mapper.to_domain_event(notification)

    container.policy.process_event(decided, Tracking("redelivery-test", decision.position))

    assert container.head_position == head
    assert container.content.get_creator(creator_id).active_strikes == 1


# -- in the background ---------------------------------------------------------------------


def test_a_background_follower_applies_the_decision(container):
    creator_id = register(container)
    container.start_background()

    # Commands keep running while the follower reads the same store from its thread.
    decision = reported_and_decided(container, creator_id, "remove")
    video_id = container.moderation.get_case(decision.id).video_id

    follower = container.followers[0]
    assert eventually(
        container,
        lambda: (
            container.content.get_video(video_id).status == VideoStatus.REMOVED
            and container.content.get_creator(creator_id).active_strikes == 1
        ),
    ), follower.last_error
    assert follower.last_error is None
    assert types_after(container, decision.position) == [Video.Removed, Creator.StrikeIssued]


def test_commands_can_read_while_the_background_follower_reads(container):
    creator_id = register(container)
    loaded: dict[str, Any] = {}

    def command() -> None:
        try:
            loaded["creator"] = container.content.get_creator(creator_id)
        except Exception as e:
            loaded["error"] = e

    # memory:// must be one database for every pooled connection. Hold a read connection,
    # as the follower does while it selects notifications, and read from another thread.
    with container.store.recorder.datastore.transaction(commit=False):
        thread = threading.Thread(target=command)
        thread.start()
        thread.join(timeout=5.0)

    assert "error" not in loaded, loaded.get("error")
    assert loaded["creator"].id == creator_id


def test_the_follower_reads_past_other_events_once_and_still_finds_the_next_decision(container):
    creator_id = register(container)
    first = reported_and_decided(container, creator_id, "keep")
    follower = container.followers[0]
    starts: list[int] = []
    select = container.store.recorder.select_notifications

    def recording_select(start: int, *args: Any, **kwargs: Any) -> Any:
        starts.append(start)
        return select(start, *args, **kwargs)

    container.store.recorder.select_notifications = recording_select  # type: ignore[method-assign]
    follower.run_until_idle()
    assert starts == [1]  # from the start of the log: nothing tracked yet
    # Many events outside the policy's topics (publications), then nothing new: the next
    # wake-up starts after them, not again from the last decision.
    for _ in range(5):
        publish(container, creator_id)
    head = container.head_position
    follower.run_until_idle()
    assert starts[-1] == first.position + 1  # reads the new events once
    follower.run_until_idle()
    assert starts[-1] == first.position + 1  # caught up: no read at all
    assert len(starts) == 2

    # A decision after them is still found and applied.
    second = reported_and_decided(container, creator_id, "remove")
    video_id = container.moderation.get_case(second.id).video_id
    follower.run_until_idle()
    assert starts[2] == head + 1  # the next read starts after what was read before
    assert container.content.get_video(video_id).status == VideoStatus.REMOVED
