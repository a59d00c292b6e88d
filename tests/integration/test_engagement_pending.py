"""Answers never rest on state that was not stored.

The write model is updated when a signal is decided, before its commit. A second signal
whose answer depends on that provisional state (a redelivery answered "duplicate", a
second like answered "already_liked") must wait for the first commit, and be decided
again if the first is refused: otherwise a client could be told its event is stored
when it never was. The appender here is a fake whose commits the test completes by hand.
"""

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from uuid import uuid4

import pytest

from adapters.bootstrap import Container, bootstrap
from adapters.settings import Settings
from commands.appending import AppendRequest, CommitExpired, DependsOnRefused
from commands.engagement import Signal

WAIT = 10.0


class HeldAppender:
    """Queues requests; the test commits or refuses each one."""

    def __init__(self) -> None:
        self.requests: list[tuple[AppendRequest, Future[list[int]]]] = []
        self.submitted = threading.Condition()
        self.position = 1000

    def submit(self, request: AppendRequest) -> "Future[list[int]]":
        future: Future[list[int]] = Future()
        if any(f.done() and f.exception() for f in request.after):  # as the committer
            future.set_exception(DependsOnRefused("decided on a refused request"))
        with self.submitted:
            self.requests.append((request, future))
            self.submitted.notify_all()
        return future

    def wait_for(self, n: int) -> tuple[AppendRequest, "Future[list[int]]"]:
        with self.submitted:
            assert self.submitted.wait_for(lambda: len(self.requests) >= n, WAIT)
            return self.requests[n - 1]

    def commit(self, n: int) -> None:
        request, future = self.requests[n - 1]
        ids = list(range(self.position + 1, self.position + 1 + len(request.events)))
        self.position += len(request.events)
        future.set_result(ids)

    def refuse(self, n: int, error: Exception | None = None) -> None:
        _, future = self.requests[n - 1]
        future.set_exception(error or CommitExpired("refused by the test"))

    def add_watch_listener(self, listener: Callable[..., None]) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def world() -> Any:
    c: Container = bootstrap(Settings(database_url="memory://", projections_in_process=False))
    creator = c.content.register_creator(handle="ann", display_name="Ann", region="SE").id
    video = c.content.publish_video(
        creator_id=creator, caption="", hashtags=[], sound_id=None, duration_seconds=30.0
    ).id
    held = HeldAppender()
    c.engagement.appender = held
    c.engagement.take_snapshot = lambda *a, **k: None  # type: ignore[method-assign]
    yield c, held, video
    c.close()


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = call()
        except Exception as e:
            out["error"] = e

    thread = threading.Thread(target=run, daemon=True)  # a failing test must not hang the run
    thread.start()
    return thread, out


def test_a_redelivery_waits_for_the_first_delivery_and_is_stored_if_it_was_not(world):
    c, held, video = world
    viewer = uuid4()
    view = Signal("view", viewer, video, watch_seconds=3.0, client_event_id="c1")

    first, first_out = in_thread(lambda: c.engagement.record(view))
    held.wait_for(1)
    again, again_out = in_thread(lambda: c.engagement.record(view))
    again.join(0.2)
    assert again.is_alive(), "a redelivery was answered before the first delivery was stored"

    held.refuse(1)  # the first delivery is not stored
    first.join(WAIT)
    assert isinstance(first_out.get("error"), CommitExpired)
    request, _ = held.wait_for(2)  # the redelivery, decided again: a new event
    assert [e.topic.rsplit(".", 1)[-1] for e in request.events] == ["Started", "Viewed"]
    held.commit(2)
    again.join(WAIT)
    assert again_out["result"].details["status"] == "recorded"


def test_a_redelivery_of_a_stored_delivery_is_a_duplicate(world):
    c, held, video = world
    view = Signal("view", uuid4(), video, watch_seconds=3.0, client_event_id="c1")

    first, first_out = in_thread(lambda: c.engagement.record(view))
    held.wait_for(1)
    again, again_out = in_thread(lambda: c.engagement.record(view))
    held.commit(1)
    for t in (first, again):
        t.join(WAIT)

    assert first_out["result"].details["status"] == "recorded"
    assert again_out["result"].details["status"] == "duplicate"
    assert len(held.requests) == 1


def test_a_batch_that_read_a_refused_request_is_refused_with_it(world):
    c, held, video = world
    viewer = uuid4()
    like = Signal("like", viewer, video)

    first, _ = in_thread(lambda: c.engagement.record(like))
    request_1, _ = held.wait_for(1)
    # A batch: the same like again (rejected on the first one's provisional state) and a
    # view on another pair (stored): its request depends on the first one.
    batch, batch_out = in_thread(
        lambda: c.engagement.ingest([like, Signal("view", uuid4(), video, watch_seconds=1.0)])
    )
    request_2, _ = held.wait_for(2)
    assert request_1.streams <= request_2.depends_on
    assert held.requests[0][1] in request_2.after

    held.refuse(1)
    first.join(WAIT)
    # The committer refuses what depends on a refused request; the fake does it by hand.
    held.refuse(2, DependsOnRefused("depends on request 1"))
    request_3, _ = held.wait_for(3)  # decided again: now the like is stored, with the view
    held.commit(3)
    batch.join(WAIT)
    assert [i.status for i in batch_out["result"].items] == ["recorded", "recorded"]
    assert {e.topic.rsplit(".", 1)[-1] for e in request_3.events} >= {"Liked", "Viewed"}
