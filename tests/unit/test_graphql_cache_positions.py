"""The response cache's view of the read models' version (adapters/graphql/cache_positions.py):
a fake database read and a fake clock, no I/O."""

import asyncio
from datetime import datetime

from adapters.graphql.cache_positions import REFRESH_AFTER, STALE_AFTER, PositionsClock

T1, T2 = datetime(2025, 1, 1, 12, 0, 0), datetime(2025, 1, 1, 12, 0, 1)


class FakeDatabase:
    """What a poll would read: the head and {name: (position, updated_at)}."""

    def __init__(self, head: int, rows: dict) -> None:
        self.head, self.rows, self.reads, self.fail = head, rows, 0, False

    def read(self) -> tuple[int, dict]:
        self.reads += 1
        if self.fail:
            raise ConnectionError("database down")
        return self.head, dict(self.rows)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(db: FakeDatabase) -> tuple[PositionsClock, Clock]:
    clock = Clock()
    return PositionsClock(db.read, ["stats", "trending"], clock=clock), clock


async def settle() -> None:
    """Let a background read (a thread) finish."""
    for _ in range(100):
        await asyncio.sleep(0.001)


def test_the_first_request_waits_for_a_read_then_fresh_positions_cost_no_read():
    async def story() -> None:
        db = FakeDatabase(10, {"stats": (10, T1), "trending": (9, T1)})
        positions, clock = make(db)
        first = await positions.current()
        assert db.reads == 1 and first.head == 10 and first.floor == 9
        clock.now += REFRESH_AFTER / 2
        assert await positions.current() is first
        assert db.reads == 1

    asyncio.run(story())


def test_ageing_positions_are_read_again_in_the_background_and_stale_ones_first():
    async def story() -> None:
        db = FakeDatabase(10, {"stats": (10, T1), "trending": (10, T1)})
        positions, clock = make(db)
        first = await positions.current()
        db.head, db.rows = 12, {"stats": (12, T2), "trending": (12, T2)}
        clock.now += (REFRESH_AFTER + STALE_AFTER) / 2
        assert await positions.current() is first  # still usable: answered at once
        await settle()
        assert db.reads == 2 and (await positions.current()).head == 12
        db.head = 13
        clock.now += STALE_AFTER
        assert (await positions.current()).head == 13  # too old to use: waited for the read
        assert db.reads == 3

    asyncio.run(story())


def test_a_commit_announced_on_the_hub_moves_the_version_at_once():
    async def story() -> None:
        db = FakeDatabase(10, {"stats": (10, T1), "trending": (10, T1)})
        positions, _ = make(db)
        before = await positions.current()
        positions.published("stats", 11, {"summary"})
        after = await positions.current()
        assert after.version != before.version
        assert after.rows["stats"][0] == 11 and after.floor == 10
        positions.published("stats", 11, set())  # announced twice: nothing moves
        assert (await positions.current()).version == after.version
        assert db.reads == 1

    asyncio.run(story())


def test_a_read_begun_before_an_announced_commit_never_moves_the_position_back():
    async def story() -> None:
        db = FakeDatabase(10, {"stats": (10, T1), "trending": (10, T1)})
        positions, clock = make(db)
        await positions.current()
        positions.published("stats", 11, {"summary"})  # the row still says (10, T1)
        clock.now += STALE_AFTER
        assert (await positions.current()).rows["stats"][0] == 11
        db.rows = {"stats": (11, T2), "trending": (10, T1)}  # the commit's own row
        clock.now += STALE_AFTER
        assert (await positions.current()).rows["stats"] == (11, T2)

    asyncio.run(story())


def test_a_rebuild_switch_at_the_same_position_or_a_deleted_row_changes_the_version():
    async def story() -> None:
        db = FakeDatabase(10, {"stats": (10, T1), "trending": (10, T1)})
        positions, clock = make(db)
        before = await positions.current()
        db.rows = {"stats": (10, T2), "trending": (10, T1)}  # blue/green switch: new updated_at
        clock.now += STALE_AFTER
        switched = await positions.current()
        assert switched.version != before.version
        db.rows = {"trending": (10, T1)}  # in-place rebuild: the row is gone
        clock.now += STALE_AFTER
        reset = await positions.current()
        assert reset.version != switched.version
        assert reset.floor == -1  # no row: not even token 0 is answered from the cache

    asyncio.run(story())


def test_the_head_is_part_of_the_version():
    async def story() -> None:
        db = FakeDatabase(10, {"stats": (10, T1), "trending": (10, T1)})
        positions, clock = make(db)
        before = await positions.current()
        db.head = 11  # written, not yet projected: the summary's headPosition moved
        clock.now += STALE_AFTER
        assert (await positions.current()).version != before.version

    asyncio.run(story())


def test_unreadable_positions_mean_no_cache_and_the_next_request_reads_again():
    async def story() -> None:
        db = FakeDatabase(10, {"stats": (10, T1), "trending": (10, T1)})
        positions, clock = make(db)
        db.fail = True
        assert await positions.current() is None
        db.fail = False
        clock.now += 0.001
        assert (await positions.current()).head == 10

    asyncio.run(story())
