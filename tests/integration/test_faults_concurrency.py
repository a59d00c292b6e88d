"""Fault: concurrent writers on one aggregate, and readers tailing the store meanwhile.

- 16 threads send commands to ONE aggregate at the same moment (a barrier), in process
  through the applications (every backend) and over HTTP through a real server: with
  `expected_version` exactly one wins and the others get VersionConflict / 409; without
  it every command succeeds (retried inside `execute`) and the final version counts
  every success, so no update is lost.
- On PostgreSQL, writer threads commit and roll back through the recorder itself while
  readers tail the notifications forward only, as the projection runner does: every
  committed event must be seen, none twice, none that rolled back.
"""

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from e2e.servers import free_port, start_server
from eventsourcing.persistence import IntegrityError, StoredEvent
from support.auth import HEADERS

from commands.base import IdempotencyRecord
from domain.errors import VersionConflict

WRITERS = 16


def _all_at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..n-1) in n threads released together; results or exceptions."""
    barrier = threading.Barrier(n, timeout=30)

    def run(i: int) -> Any:
        barrier.wait()
        try:
            return work(i)
        except Exception as e:
            return e

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n), timeout=120))


def _video(container: Any) -> uuid.UUID:
    creator = container.content.register_creator(handle="race", display_name="R", region="DE")
    published = container.content.publish_video(
        creator_id=creator.id,
        caption="start",
        hashtags=[],
        sound_id=None,
        duration_seconds=30.0,
    )
    return published.id


def test_sixteen_writers_on_one_aggregate_in_process(store_url, container_factory):
    container = container_factory(store_url)
    video_id = _video(container)
    start = container.content.get_video(video_id).version

    # Optimistic concurrency: all expect the same version, exactly one may win.
    results = _all_at_once(
        WRITERS,
        lambda i: container.content.edit_caption(
            video_id, caption=f"expected {i}", hashtags=[], expected_version=start
        ),
    )
    wins = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 1, results
    assert all(isinstance(e, VersionConflict) for e in losers), losers
    assert container.content.get_video(video_id).version == start + 1

    # Last writer wins, but every write is kept: retried on conflict, none lost.
    results = _all_at_once(
        WRITERS,
        lambda i: container.content.edit_caption(video_id, caption=f"free {i}", hashtags=[]),
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    video = container.content.get_video(video_id)
    assert video.version == start + 1 + WRITERS  # final version = successes
    assert sorted(r.version for r in results) == list(range(start + 2, start + 2 + WRITERS))
    print(f"\n16 writers ({store_url.split(':')[0]}): 1 win + 15 VersionConflict; then 16/16 ok")


def test_sixteen_writers_on_one_aggregate_over_http(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(f"sqlite:///{tmp_path}/store.db", port, timeout=90)
    try:
        with httpx.Client(timeout=60, headers=HEADERS) as http:
            r = http.post(
                f"{base}/v1/creators", json={"handle": "race", "display_name": "R", "region": "DE"}
            )
            assert r.status_code == 201, r.text
            r = http.post(
                f"{base}/v1/videos", json={"creator_id": r.json()["id"], "duration_seconds": 30}
            )
            assert r.status_code == 201, r.text
            video, start = r.json()["id"], r.json()["version"]

            def edit(i: int, expected: int | None) -> httpx.Response:
                body: dict[str, Any] = {"caption": f"c{i}", "hashtags": []}
                if expected is not None:
                    body["expected_version"] = expected
                return http.patch(f"{base}/v1/videos/{video}", json=body)

            answers = _all_at_once(WRITERS, lambda i: edit(i, start))
            codes = Counter(a.status_code for a in answers)
            assert codes == {200: 1, 409: WRITERS - 1}, codes
            assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
                "version_conflict"
            }
            answers = _all_at_once(WRITERS, lambda i: edit(i, None))
            assert Counter(a.status_code for a in answers) == {200: WRITERS}
            versions = sorted(a.json()["version"] for a in answers)
            assert versions == list(range(start + 2, start + 2 + WRITERS))
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.postgres
def test_tailing_readers_never_miss_a_committed_event(pg_url, container_factory):
    container = container_factory(pg_url)
    recorder = container.store.recorder
    taken = IdempotencyRecord("taken", "f", {})
    first = StoredEvent(uuid.uuid4(), 1, "faults:Seed", b"{}")
    recorder.insert_events([first], idempotency=taken)
    committed: set[tuple[uuid.UUID, int]] = {(first.originator_id, 1)}
    rolled_back: set[tuple[uuid.UUID, int]] = set()
    lock = threading.Lock()
    done = threading.Event()

    def writer(n: int) -> None:
        for k in range(40):
            stream = uuid.uuid4()
            events = [
                StoredEvent(stream, v, "faults:Written", b"{}") for v in (1, 2, 3)[: 1 + k % 3]
            ]
            if n % 3 == 2:
                # The recorder inserts the events (taking notification ids and the table
                # lock), then the used idempotency key rolls the whole transaction back.
                with pytest.raises(IntegrityError):
                    recorder.insert_events(events, idempotency=taken)
                with lock:
                    rolled_back.update((e.originator_id, e.originator_version) for e in events)
            else:
                recorder.insert_events(events)
                with lock:
                    committed.update((e.originator_id, e.originator_version) for e in events)

    def raw_rollbacks() -> None:
        """Transactions outside the recorder that take sequence values and roll back late."""
        table = recorder.events_table_name
        with psycopg.connect(pg_url) as conn:
            while not done.is_set():
                with conn.transaction(force_rollback=True):
                    conn.execute(
                        f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
                        " VALUES (%s, 1, 'faults:Doomed', '\\x00')",
                        (uuid.uuid4(),),
                    )
                    time.sleep(0.01)  # holds its id while others commit later ids

    seen: list[list[tuple[uuid.UUID, int, int]]] = [[], []]

    def reader(slot: int) -> None:
        last = 0
        while True:
            finishing = done.is_set()
            batch = recorder.select_notifications(start=last + 1, limit=25)
            for n in batch:
                seen[slot].append((n.originator_id, n.originator_version, n.id))
                last = n.id
            if finishing and not batch:
                return

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(2)]
    threads.append(threading.Thread(target=raw_rollbacks))
    for t in threads:
        t.start()
    started = time.monotonic()
    try:
        _all_at_once(9, writer)  # 6 committing, 3 rolling back
    finally:
        done.set()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads)
    elapsed = time.monotonic() - started
    for events in seen:
        keys = [(o, v) for o, v, _ in events]
        ids = [i for _, _, i in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)  # forward only, no repeats
        assert set(keys) == committed, (
            f"missed {len(committed - set(keys))}, unexpected {len(set(keys) - committed)}"
        )
    assert not rolled_back & set(keys)
    print(
        f"\ntailing readers: {len(committed)} committed events, {len(rolled_back)} rolled "
        f"back by the recorder, all seen by 2 readers in {elapsed:.1f}s, none missed"
    )
