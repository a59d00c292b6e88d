"""Old serialized events still load: Creator.Registered v1 (no region) is upcast to v2.

The payloads below are frozen copies of what the first release wrote. Never regenerate
them from the current classes: that would only test today's code against itself.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import StoredEvent

from adapters.bootstrap import Container, bootstrap
from adapters.settings import Settings
from domain.creator import UNKNOWN_REGION, Creator

CREATOR_ID = UUID("11111111-2222-3333-4444-555555555555")
CASE_ID = UUID("00000000-0000-0000-0000-000000000005")
REGISTERED_AT = datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)

# Creator.Registered as written by class version 1: no "region", no "class_version".
REGISTERED_V1 = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2023-01-02T03:04:05.678901+00:00"},'
    b'"originator_topic":"domain.creator:Creator","handle":"old_timer",'
    b'"display_name":"Old Timer",'
    b'"occurred_at":{"_type_":"datetime_iso","_data_":"2023-01-02T03:04:05+00:00"}}'
)
# Creator.StrikeIssued from the same release (still class version 1).
STRIKE_ISSUED_V1 = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2023-02-03T04:05:06.000001+00:00"},'
    b'"case_id":{"_type_":"uuid_hex","_data_":"00000000000000000000000000000005"},'
    b'"reason":"spam policy",'
    b'"occurred_at":{"_type_":"datetime_iso","_data_":"2023-02-03T04:05:06+00:00"}}'
)
# Creator.Registered as written by class version 2 (with a real region).
REGISTERED_V2 = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2023-01-02T03:04:05.678901+00:00"},'
    b'"originator_topic":"domain.creator:Creator","handle":"old_timer",'
    b'"display_name":"Old Timer","region":"SE",'
    b'"occurred_at":{"_type_":"datetime_iso","_data_":"2023-01-02T03:04:05+00:00"},'
    b'"class_version":2}'
)


def stored(version: int, topic: str, state: bytes, originator_id: UUID = CREATOR_ID) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id, originator_version=version, topic=topic, state=state
    )


V1_STREAM = [
    stored(1, "domain.creator:Creator.Registered", REGISTERED_V1),
    stored(2, "domain.creator:Creator.StrikeIssued", STRIKE_ISSUED_V1),
]


@pytest.fixture
def container() -> Iterator[Container]:
    container = bootstrap(Settings(database_url="memory://"))
    yield container
    container.close()


def test_mapper_upcasts_a_v1_registered_event(container):
    event = container.content.mapper.to_domain_event(V1_STREAM[0])

    assert type(event) is Creator.Registered
    assert event.region == UNKNOWN_REGION == "ZZ"
    assert (event.originator_id, event.originator_version) == (CREATOR_ID, 1)
    assert (event.handle, event.display_name, event.occurred_at) == (
        "old_timer",
        "Old Timer",
        REGISTERED_AT,
    )
    assert event.timestamp == datetime(2023, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_mapper_rebuilds_a_creator_from_a_v1_stream(container):
    events = [container.content.mapper.to_domain_event(s) for s in V1_STREAM]

    creator = project_aggregate(None, events)

    assert isinstance(creator, Creator)
    assert (creator.handle, creator.region, creator.registered_at) == (
        "old_timer",
        "ZZ",
        REGISTERED_AT,
    )
    assert creator.strike_cases == [CASE_ID]


def test_a_v1_creator_loads_from_the_store(container):
    container.store.recorder.insert_events(V1_STREAM)

    creator = container.content.get_creator(CREATOR_ID)

    assert creator.region == "ZZ"
    assert (creator.handle, creator.display_name, creator.registered_at) == (
        "old_timer",
        "Old Timer",
        REGISTERED_AT,
    )
    assert creator.strike_cases == [CASE_ID]
    assert creator.version == 2
    assert not creator.suspended


def test_a_v1_creator_takes_new_commands(container):
    container.store.recorder.insert_events(V1_STREAM)

    result = container.content.update_profile(CREATOR_ID, display_name="Old Timer", region="se")

    assert result.version == 3
    assert container.content.get_creator(CREATOR_ID).region == "SE"


def test_a_v2_registered_event_keeps_its_region(container):
    container.store.recorder.insert_events(
        [stored(1, "domain.creator:Creator.Registered", REGISTERED_V2)]
    )

    assert container.content.get_creator(CREATOR_ID).region == "SE"


def test_new_registrations_are_written_as_v2(container):
    creator = Creator.register(
        creator_id=CREATOR_ID,
        handle="old_timer",
        display_name="Old Timer",
        region="SE",
        occurred_at=REGISTERED_AT,
    )
    [event] = creator.collect_events()

    state = json.loads(container.content.mapper.to_stored_event(event).state)

    assert state["class_version"] == 2
    assert state["region"] == "SE"


# -- events whose fields changed after the first release (commit 0092d09) -------------------

VIEWER_ID = UUID("00000000-0000-0000-0000-0000000000aa")
FOLLOWING_ID = UUID("22222222-3333-4444-5555-666666666666")


def strike_issued_v1(case: int) -> bytes:
    return (
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2023-02-03T04:05:06.000001+00:00"},'
        b'"case_id":{"_type_":"uuid_hex","_data_":"%032x"},"reason":"spam policy",'
        b'"occurred_at":{"_type_":"datetime_iso","_data_":"2023-02-03T04:05:06+00:00"}}' % case
    )


# Creator.Suspended v1 had no "cause".
SUSPENDED_V1_AUTOMATIC = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2023-02-04T00:00:00.000001+00:00"},'
    b'"reason":"3 active strikes",'
    b'"occurred_at":{"_type_":"datetime_iso","_data_":"2023-02-04T00:00:00+00:00"}}'
)
SUSPENDED_V1_MANUAL = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2023-02-04T00:00:00.000001+00:00"},'
    b'"reason":"fraud investigation",'
    b'"occurred_at":{"_type_":"datetime_iso","_data_":"2023-02-04T00:00:00+00:00"}}'
)
# Following v1: Followed and Unfollowed had no "client_event_id".
FOLLOWING_STARTED_V1 = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2023-03-01T10:00:00.000001+00:00"},'
    b'"originator_topic":"domain.following:Following",'
    b'"viewer_id":{"_type_":"uuid_hex","_data_":"000000000000000000000000000000aa"},'
    b'"creator_id":{"_type_":"uuid_hex","_data_":"11111111222233334444555555555555"},'
    b'"occurred_at":{"_type_":"datetime_iso","_data_":"2023-03-01T10:00:00+00:00"}}'
)
FOLLOWED_V1 = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2023-03-01T10:00:01.000001+00:00"},'
    b'"occurred_at":{"_type_":"datetime_iso","_data_":"2023-03-01T10:00:01+00:00"}}'
)
UNFOLLOWED_V1 = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2023-03-01T10:00:02.000001+00:00"},'
    b'"occurred_at":{"_type_":"datetime_iso","_data_":"2023-03-01T10:00:02+00:00"}}'
)


@pytest.mark.parametrize(
    ("suspended", "for_strikes"), [(SUSPENDED_V1_AUTOMATIC, True), (SUSPENDED_V1_MANUAL, False)]
)
def test_a_v1_suspended_creator_loads(container, suspended, for_strikes):
    container.store.recorder.insert_events(
        [
            stored(1, "domain.creator:Creator.Registered", REGISTERED_V1),
            *(
                stored(1 + n, "domain.creator:Creator.StrikeIssued", strike_issued_v1(n))
                for n in (1, 2, 3)
            ),
            stored(5, "domain.creator:Creator.Suspended", suspended),
        ]
    )

    creator = container.content.get_creator(CREATOR_ID)

    assert creator.suspended
    assert creator.active_strikes == 3
    assert creator.suspended_for_strikes is for_strikes  # v1 -> v2 derives `cause`


def test_a_v1_following_loads(container):
    container.store.recorder.insert_events(
        [
            stored(1, "domain.following:Following.Started", FOLLOWING_STARTED_V1, FOLLOWING_ID),
            stored(2, "domain.following:Following.Followed", FOLLOWED_V1, FOLLOWING_ID),
            stored(3, "domain.following:Following.Unfollowed", UNFOLLOWED_V1, FOLLOWING_ID),
            stored(4, "domain.following:Following.Followed", FOLLOWED_V1, FOLLOWING_ID),
        ]
    )

    following = container.engagement.repository.get(FOLLOWING_ID)

    assert (following.viewer_id, following.creator_id) == (VIEWER_ID, CREATOR_ID)
    assert following.following
    assert following.version == 4
