"""The response cache's bounded LRU store (adapters/graphql/cache_store.py)."""

from adapters.graphql.cache_store import ENTRY_OVERHEAD, AnswerStore, CachedAnswer

JSON = ((b"content-type", b"application/json"),)


def answer(body: bytes = b"{}", version: tuple = (1, ())) -> CachedAnswer:
    return CachedAnswer(version, 200, JSON, body)


def test_least_recently_used_entries_go_first():
    store = AnswerStore(max_entries=2)
    store.put(b"a", answer())
    store.put(b"b", answer())
    assert store.get(b"a") is not None  # a is now the most recent
    store.put(b"c", answer())
    assert store.get(b"b") is None and store.get(b"a") is not None and len(store) == 2


def test_memory_is_bounded_by_bytes_and_huge_answers_are_not_kept():
    size = answer(b"x" * 1000).size
    store = AnswerStore(max_entries=100, max_bytes=size * 8)
    for i in range(20):
        assert store.put(bytes([i]), answer(b"x" * 1000))
    assert store.bytes <= store.max_bytes and len(store) == 8
    assert not store.put(b"huge", answer(b"x" * size * 2))  # over an eighth of the bound
    assert store.get(b"huge") is None


def test_replacing_an_entry_keeps_the_byte_count_exact():
    store = AnswerStore()
    store.put(b"k", answer(b"x" * 10))
    store.put(b"k", answer(b"y" * 20))
    assert len(store) == 1
    assert store.bytes == 20 + len(b"content-typeapplication/json") + ENTRY_OVERHEAD
    store.clear()
    assert store.bytes == 0 and len(store) == 0
