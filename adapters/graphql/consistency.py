"""Read-your-writes waits that hold no thread while they wait.

A query carrying X-Consistency-Token waits (bounded) until the projections reached the
token. The wait used to run `ProjectionManager.wait_for` in `asyncio.to_thread`: a thread
of the event loop's default executor (cpu_count + 4 threads, 6 on 2 cores, shared with
every GraphQL reader call) was held for up to the timeout, so a few waiting queries
stalled every other GraphQL request of the process. Here only each read of the positions
(one short query) runs in a thread; between reads the wait sleeps on the event loop,
woken at once by in-process projection commits (the ChangeHub's listener) and otherwise
every POLL_SECONDS (projections running in another process).
"""

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from adapters.projections.manager import ProjectionManager

POLL_SECONDS = 0.05
# Positions are 64-bit integers (19 digits): a longer token is not a position.
MAX_TOKEN_DIGITS = 19


def parse_token(raw: str | None) -> tuple[int | None, str | None]:
    """(token, error) of an X-Consistency-Token header value: ASCII digits only (str.isdigit
    also takes '²' and other digits int() refuses)."""
    if not raw:
        return None, None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_TOKEN_DIGITS:
        return None, (
            "X-Consistency-Token must be a position (a non-negative integer of at most "
            f"{MAX_TOKEN_DIGITS} digits, as returned by a command)"
        )
    return int(raw), None


@dataclass(eq=False)
class _Waiting:
    """A waiting query: its loop, the event that wakes it, and what it waits for."""

    loop: asyncio.AbstractEventLoop
    event: asyncio.Event
    names: tuple[str, ...]
    position: int


class ConsistencyWaiter:
    """One per ProjectionManager (`ConsistencyWaiter.of`): a single listener on its hub."""

    _by_manager: "weakref.WeakKeyDictionary[ProjectionManager, ConsistencyWaiter]" = (
        weakref.WeakKeyDictionary()
    )
    _created = threading.Lock()

    @classmethod
    def of(cls, projections: ProjectionManager) -> "ConsistencyWaiter":
        with cls._created:
            waiter = cls._by_manager.get(projections)
            if waiter is None:
                waiter = cls._by_manager[projections] = cls(projections)
            return waiter

    def __init__(self, projections: ProjectionManager) -> None:
        self._projections = weakref.proxy(projections)  # the hub's listener keeps us alive
        self._lock = threading.Lock()
        self._waiting: set[_Waiting] = set()
        self._hub = projections.hub
        projections.hub.add_listener(self._committed)

    def _committed(self, name: str, position: int, changed: set[str]) -> None:
        """Called from the projections' thread after each runner's commit (eleven per
        round): wake only the queries whose projections all reached their token now,
        once each, not every waiting query at every runner's commit (each wake-up is a
        write to the event loop's self-pipe and a pass of the wait, taking the GIL from
        the request path)."""
        with self._lock:
            if not self._waiting:
                return
            waiting = list(self._waiting)
        positions = self._hub.positions()
        for w in waiting:
            if w.event.is_set() or w.loop.is_closed():
                continue
            if all(positions.get(n, 0) >= w.position for n in w.names):
                w.loop.call_soon_threadsafe(w.event.set)

    async def wait(self, names: Iterable[str], position: int, timeout: float) -> dict[str, int]:
        """The positions once every projection in `names` reached `position`, or the last
        positions read when `timeout` seconds passed."""
        names = list(names)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        entry = _Waiting(loop, asyncio.Event(), tuple(names), position)
        with self._lock:
            self._waiting.add(entry)
        try:
            while True:
                entry.event.clear()  # before the read: a commit after it still wakes us
                positions = self._projections.live_positions()  # in process: no query
                if positions is None:
                    positions = await asyncio.to_thread(self._projections.positions)
                remaining = deadline - loop.time()
                if all(positions.get(n, 0) >= position for n in names) or remaining <= 0:
                    return positions
                # Polled too: projections running in another process do not wake us.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(entry.event.wait(), min(remaining, POLL_SECONDS))
        finally:
            with self._lock:
                self._waiting.discard(entry)
