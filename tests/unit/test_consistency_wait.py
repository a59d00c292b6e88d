"""Read-your-writes waits: a query waiting for its token wakes when every projection it
waits for reached the token, once, not at every projection's commit before that."""

import asyncio
import threading

import pytest

from adapters.graphql import consistency
from adapters.graphql.consistency import ConsistencyWaiter
from adapters.projections.hub import ChangeHub


class Projections:
    """What the waiter needs of a ProjectionManager whose runners run in this process."""

    def __init__(self, names: list[str]) -> None:
        self.hub = ChangeHub()
        self.names = names
        self.reads = 0  # passes of the wait (each reads the positions)
        for name in names:
            self.hub.publish(name, 0, set())

    def live_positions(self) -> dict[str, int]:
        self.reads += 1
        return self.hub.positions()

    def positions(self) -> dict[str, int]:
        raise AssertionError("in process: the positions come from the hub")


def test_a_waiting_query_wakes_once_when_all_its_projections_reached_the_token(monkeypatch):
    monkeypatch.setattr(consistency, "POLL_SECONDS", 30.0)  # only a commit can wake it
    projections = Projections(["stats", "trending", "sessions"])
    waiter = ConsistencyWaiter.of(projections)  # type: ignore[arg-type]

    async def scenario() -> dict[str, int]:
        waiting = asyncio.ensure_future(waiter.wait(["stats", "trending"], 10, timeout=20.0))
        while projections.reads == 0:
            await asyncio.sleep(0.001)  # the wait's first pass (bounded by the test timeout)

        # One commit per runner, from the projections' thread; between them the loop runs
        # whatever a commit woke.
        for name, position in [("stats", 10), ("sessions", 10), ("trending", 9),
                               ("trending", 10)]:  # fmt: skip
            thread = threading.Thread(target=projections.hub.publish, args=(name, position, set()))
            thread.start()
            thread.join()
            for _ in range(20):
                await asyncio.sleep(0)  # let the loop run the wake-ups (none of its own)
        return await asyncio.wait_for(waiting, timeout=5.0)

    positions = asyncio.run(scenario())
    assert positions["stats"] == positions["trending"] == 10
    assert projections.reads == 2  # the first pass, then one wake-up: not one per commit


def test_a_query_whose_token_was_reached_before_it_waited_answers_at_once():
    projections = Projections(["stats"])
    projections.hub.publish("stats", 5, set())
    waiter = ConsistencyWaiter.of(projections)  # type: ignore[arg-type]
    assert asyncio.run(waiter.wait(["stats"], 5, timeout=0.0)) == {"stats": 5}
    assert projections.reads == 1


@pytest.mark.parametrize("timeout", [0.05])
def test_a_wait_ends_at_its_timeout_with_the_positions_it_read(timeout):
    projections = Projections(["stats"])
    waiter = ConsistencyWaiter.of(projections)  # type: ignore[arg-type]
    assert asyncio.run(waiter.wait(["stats"], 5, timeout=timeout)) == {"stats": 0}
