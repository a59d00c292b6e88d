"""API keys: `rp_<key id>_<secret>`. Only a sha256 of the secret is stored; a key is
found by its id and its secret compared in constant time. Secrets are 192 random bits,
so a fast hash is enough (no password stretching needed)."""

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa

from adapters.auth.principal import Principal, Role
from adapters.auth.tables import api_keys

PREFIX = "rp_"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(raw: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    if not raw.startswith(PREFIX):
        return None
    key_id, sep, secret = raw[len(PREFIX) :].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 32:
        return None
    return key_id, secret


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    role: Role
    subject_id: UUID | None
    label: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyStore:
    """Keys in the read-model database. Lookups are cached for `cache_seconds`: a key
    revoked by another process stops working within that time (at once in this one)."""

    def __init__(self, engine: sa.Engine, *, cache_seconds: float = 2.0) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def create(
        self, role: Role | str, *, subject_id: UUID | None = None, label: str = ""
    ) -> tuple[str, KeyInfo]:
        """A new key: returns the full key (shown once, never stored) and its record."""
        role = Role(role)
        if (role is Role.CREATOR) != (subject_id is not None):
            raise ValueError("a creator key needs --subject (the creator id); other roles none")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
        return f"{PREFIX}{key_id}_{secret}", self._insert(key_id, secret, role, subject_id, label)

    def register(self, raw: str, role: Role | str, *, label: str = "") -> KeyInfo:
        """Store a key chosen elsewhere (REELPULSE_DEV_API_KEY), replacing one with its id."""
        parts = split_key(raw)
        if parts is None:
            raise ValueError("an API key looks like rp_<id>_<secret>")
        with self.engine.begin() as conn:
            conn.execute(api_keys.delete().where(api_keys.c.key_id == parts[0]))
        self._forget()
        return self._insert(parts[0], parts[1], Role(role), None, label)

    def _insert(
        self, key_id: str, secret: str, role: Role, subject_id: UUID | None, label: str
    ) -> KeyInfo:
        info = KeyInfo(key_id, role, subject_id, label, datetime.now(UTC), None)
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    key_id=key_id, hash=_digest(secret), role=role.value,
                    subject_id=subject_id, label=label, created_at=info.created_at,
                )
            )  # fmt: skip
        return info

    def revoke(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            ).rowcount
        self._forget()
        return bool(done)

    def list(self, *, include_revoked: bool = False) -> list[KeyInfo]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            KeyInfo(r.key_id, Role(r.role), r.subject_id, r.label, r.created_at, r.revoked_at)
            for r in rows
        ]

    def active_count(self) -> int:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(api_keys.c.revoked_at.is_(None))
            return int(conn.execute(query).scalar_one())

    def lookup(self, raw: str) -> Principal | None:
        """The principal of an active key, or None (unknown, revoked, wrong secret)."""
        known, principal = self.peek(raw)
        if known:
            return principal
        now = time.monotonic()
        cache_key = _digest(raw)  # never keep raw keys in memory longer than the request
        principal = self._lookup(raw)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[cache_key] = (now, principal)
        return principal

    def peek(self, raw: str) -> tuple[bool, Principal | None]:
        """(True, what `lookup` answers) when the cache holds a fresh answer for this key,
        else (False, None): `lookup` would read the database. Never does I/O, so an event
        loop may call it (adapters/auth/policy.py) and hop to a thread only on a miss."""
        with self._lock:
            hit = self._cache.get(_digest(raw))
        if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
            return True, hit[1]
        return False, None

    def _lookup(self, raw: str) -> Principal | None:
        parts = split_key(raw)
        if parts is None:
            return None
        key_id, secret = parts
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.hash, _digest(secret)):
            return None
        return Principal(Role(row.role), key_id, row.subject_id, row.label)

    def _forget(self) -> None:
        with self._lock:
            self._cache.clear()
