"""Field-level crypto-shredding in eventsourcing's Mapper.

`to_stored_event` replaces each designated field (fields.ERASABLE) with a sealed value,
AES-256-GCM under its subject's key (created on first use), bound to subject and field
name as associated data. In the stored JSON it is one transcoded object, so the state
stays JSON (export, Kafka relay and replay files keep working):

    "text": {"_type_": "reelpulse_sealed", "_data_": {"s": "<subject hex>",
             "n": "<nonce b64>", "c": "<ciphertext b64>"}}

`to_domain_event` opens it again, or, once the subject's key is gone, puts fields.ERASED
in its place: the event still loads, with every other field intact, so aggregates,
projections and rebuilds run unchanged. Events stored before this mapper (a plain string
in the field) load as they are.
"""

import base64
import os
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import (
    InfrastructureFactory,
    JSONTranscoder,
    Mapper,
    ProcessRecorder,
    StoredEvent,
    Transcoder,
    Transcoding,
)
from eventsourcing.utils import get_topic

from adapters.erasure.fields import ERASABLE, ERASED, ErasableField
from adapters.erasure.keys import KeyStore, key_store_for

SEALED_TYPE = "reelpulse_sealed"
NONCE_BYTES = 12


@dataclass(frozen=True)
class Sealed:
    """An encrypted field value as stored (the subject is kept in clear to find the key)."""

    subject: UUID
    nonce: bytes
    ciphertext: bytes


class SealedAsJSON(Transcoding):
    type = Sealed
    name = SEALED_TYPE

    def encode(self, obj: Sealed) -> dict[str, str]:
        return {
            "s": obj.subject.hex,
            "n": base64.b64encode(obj.nonce).decode(),
            "c": base64.b64encode(obj.ciphertext).decode(),
        }

    def decode(self, data: dict[str, str]) -> Sealed:
        return Sealed(UUID(data["s"]), base64.b64decode(data["n"]), base64.b64decode(data["c"]))


def _aad(subject: UUID, field: str) -> bytes:
    return subject.bytes + field.encode()


def seal(key: bytes, subject: UUID, field: str, value: str, nonce: bytes) -> Sealed:
    ciphertext = AESGCM(key).encrypt(nonce, value.encode(), _aad(subject, field))
    return Sealed(subject, nonce, ciphertext)


def open_sealed(key: bytes, field: str, sealed: Sealed) -> str:
    plain = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, _aad(sealed.subject, field))
    return plain.decode()


class ShreddingMapper(Mapper[UUID]):
    def __init__(
        self,
        transcoder: Transcoder,
        compressor: Any = None,
        cipher: Any = None,
        *,
        keys: KeyStore,
    ) -> None:
        super().__init__(transcoder=transcoder, compressor=compressor, cipher=cipher)
        self.keys = keys
        if isinstance(transcoder, JSONTranscoder) and SEALED_TYPE not in transcoder.names:
            transcoder.register(SealedAsJSON())

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        fields = ERASABLE.get(get_topic(type(domain_event)))
        if fields:
            domain_event = self._sealed_copy(domain_event, fields)
        return super().to_stored_event(domain_event)

    def prepare_keys(self, subjects: Iterable[UUID]) -> None:
        """Create or read the keys `encode_state` will need for these subjects, at once."""
        self.keys.prepare_for_writing(subjects)

    def encode_state(self, topic: str, state: dict[str, Any]) -> bytes:
        """What `to_stored_event` stores for an event of `topic` with this state (the
        lean write path builds states, not event objects): erasable fields sealed, then
        the transcoder, the compressor and the cipher, as the library's mapper does."""
        fields = ERASABLE.get(topic)
        if fields:
            state = self._sealed_state(dict(state), fields)
        data = self.transcoder.encode(state)
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return data

    def to_domain_events(self, stored_events: Sequence[StoredEvent]) -> list[Any]:
        """`to_domain_event` for many events: the keys their sealed fields need are read
        in one query. An event that cannot be decoded gives its exception in its place
        (a poison event fails only the runners that need it)."""
        decode = super().to_domain_event
        events: list[Any] = []
        subjects: set[UUID] = set()
        for stored in stored_events:
            try:
                event = decode(stored)
            except Exception as e:
                events.append(e)
                continue
            for spec in ERASABLE.get(stored.topic, ()):
                value = vars(event).get(spec.field)
                if isinstance(value, Sealed):
                    subjects.add(value.subject)
            events.append(event)
        if subjects:
            self.keys.prefetch_for_reading(subjects)
            for stored, event in zip(stored_events, events, strict=True):
                if stored.topic in ERASABLE and not isinstance(event, Exception):
                    self._open_fields(stored.topic, event)
        return events

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        if stored_event.topic in ERASABLE:
            self._open_fields(stored_event.topic, event)
        return event

    def _open_fields(self, topic: str, event: Any) -> None:
        state = vars(event)
        for spec in ERASABLE[topic]:
            value = state.get(spec.field)
            if isinstance(value, Sealed):
                state[spec.field] = self._open(spec.field, value)

    def _sealed_copy(self, event: Any, fields: tuple[ErasableField, ...]) -> Any:
        state = self._sealed_state(dict(vars(event)), fields)
        copy = object.__new__(type(event))
        object.__setattr__(copy, "__dict__", state)
        return copy

    def _sealed_state(
        self, state: dict[str, Any], fields: tuple[ErasableField, ...]
    ) -> dict[str, Any]:
        for spec in fields:
            value, subject = state.get(spec.field), state.get(spec.subject)
            if not isinstance(value, str) or not isinstance(subject, UUID):
                continue
            key = self.keys.key_for_writing(subject)
            if key is None:  # the subject was forgotten: the value is not stored at all
                state[spec.field] = Sealed(subject, b"", b"")
            else:
                state[spec.field] = seal(key, subject, spec.field, value, _nonce())
        return state

    def _open(self, field: str, sealed: Sealed) -> str:
        key = self.keys.key_for_reading(sealed.subject)
        if key is None or not sealed.ciphertext:
            return ERASED
        return open_sealed(key, field, sealed)


class _Nonces:
    """Random nonces (os.urandom), drawn 256 at a time. os.urandom releases the GIL for
    its system call; a thread that seals a comment while deciding a batch (with the write
    model's lock held) then waited up to the switch interval (5 ms) to get it back, for
    every comment. Each nonce is still 12 fresh random bytes, used once; the pool is
    emptied in a forked child (it must not reuse its parent's)."""

    PER_DRAW = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._at = b"", 0

    def __call__(self) -> bytes:
        with self._lock:
            at = self._at
            if at >= len(self._pool):
                self._pool, at = os.urandom(NONCE_BYTES * self.PER_DRAW), 0
            self._at = at + NONCE_BYTES
            return self._pool[at : at + NONCE_BYTES]


_nonce = _Nonces()


# One key store per recorder, shared by every mapper of that store, so an erasure in this
# process takes effect in every application's mapper at once (other processes: the
# key store's cache bound, keys.CACHE_SECONDS).
_KEY_STORES: "weakref.WeakKeyDictionary[Any, KeyStore]" = weakref.WeakKeyDictionary()


def keys_for(recorder: ProcessRecorder, *, create_table: bool = True) -> KeyStore:
    store = _KEY_STORES.get(recorder)
    if store is None:
        store = _KEY_STORES[recorder] = key_store_for(recorder, create_table=create_table)
    return store


def install_shredding(factory: InfrastructureFactory[Any], recorder: ProcessRecorder) -> KeyStore:
    """Make every mapper `factory` builds from now on a ShreddingMapper (idempotent).

    The one hook: called by open_shared_store right after the recorder is built, before
    any application constructs its mapper (and by the read-only replay store, whose
    environment says CREATE_TABLE=n: the key table is then only read, never created).
    """
    keys = keys_for(recorder, create_table=factory.env.get("CREATE_TABLE", "y") != "n")
    if getattr(factory, "_reelpulse_shredding", False):
        return keys
    build = factory.mapper

    def mapper(transcoder: Transcoder | None = None, mapper_class: Any = None) -> Mapper[Any]:
        base = build(transcoder=transcoder, mapper_class=mapper_class)
        return ShreddingMapper(
            base.transcoder, compressor=base.compressor, cipher=base.cipher, keys=keys
        )

    factory.mapper = mapper  # type: ignore[method-assign]
    factory._reelpulse_shredding = True  # type: ignore[attr-defined]
    return keys
