"""Change notifications from projection commits to waiting readers and subscriptions."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any


class ChangeHub:
    """Thread-safe: runners publish (from their threads) after each commit; readers wait
    for positions (blocking or async) and subscriptions receive change keys."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}
        self._cond = threading.Condition()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[set[str]]]] = set()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str, int, set[str]], None]] = []

    def positions(self) -> dict[str, int]:
        """The latest position published for each projection (a copy)."""
        with self._cond:
            return dict(self._positions)

    def add_listener(self, listener: Callable[[str, int, set[str]], None]) -> None:
        """Call `listener(name, position, changed)` after every commit (from the runner's
        thread: it must be quick, e.g. set an event)."""
        self._listeners.append(listener)

    def publish(self, name: str, position: int, changed: set[str]) -> None:
        with self._cond:
            self._positions[name] = max(position, self._positions.get(name, 0))
            self._cond.notify_all()
        for listener in self._listeners:
            listener(name, position, changed)
        if not changed:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            if not loop.is_closed():
                loop.call_soon_threadsafe(queue.put_nowait, set(changed))

    def wait_positions(
        self, read: Any, names: Iterable[str], position: int, timeout: float
    ) -> dict[str, int]:
        """Block until every projection in `names` reached `position` or timeout.

        `read()` returns {name: position} from the database (covers projections running
        in another process); in-process commits wake the wait at once.
        """
        names = list(names)
        deadline = time.monotonic() + timeout
        while True:
            positions = read()
            if all(positions.get(n, 0) >= position for n in names):
                return positions
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return positions
            with self._cond:
                self._cond.wait(min(remaining, 0.05))

    async def subscribe(self) -> AsyncIterator[set[str]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[set[str]] = asyncio.Queue()
        entry = (loop, queue)
        with self._lock:
            self._subscribers.add(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            with self._lock:
                self._subscribers.discard(entry)
