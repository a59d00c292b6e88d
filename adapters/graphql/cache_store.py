"""The response cache's storage: a bounded LRU of exact HTTP answers.

Bounded twice: by entries and by bytes (bodies and headers), so a few huge answers cannot
hold the process's memory. Used from the event loop's thread only (no lock)."""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_ENTRIES = 4096
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
ENTRY_OVERHEAD = 256  # key, tuples and object headers, roughly


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    version: tuple[Any, ...]  # Positions.version the answer was computed from (or after)
    status: int
    headers: tuple[tuple[bytes, bytes], ...]  # as the uncached path sent them
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + ENTRY_OVERHEAD


class AnswerStore:
    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("the cache needs room for at least one entry and one byte")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[bytes, CachedAnswer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> CachedAnswer | None:
        answer = self._entries.get(key)
        if answer is not None:
            self._entries.move_to_end(key)
        return answer

    def put(self, key: bytes, answer: CachedAnswer) -> bool:
        """Keep `answer` (replacing the key's older one); False when it is too large to
        keep (more than an eighth of the byte bound)."""
        self.discard(key)
        size = answer.size
        if size > self.max_bytes // 8:
            return False
        self._entries[key] = answer
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self.bytes -= oldest.size
        return True

    def discard(self, key: bytes) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
