"""The authenticator: turns request headers into a Principal, and holds the rate limiter.

Built once per app from the settings (`Authenticator.from_settings`)."""

import hashlib
import hmac
from collections.abc import Mapping

import sqlalchemy as sa

from adapters.auth import jwt as tokens
from adapters.auth.keys import PREFIX, ApiKeyStore
from adapters.auth.principal import Principal, Role, unauthenticated
from adapters.auth.ratelimit import RateLimited, RateLimiter
from adapters.settings import Settings

DEFAULT_RATE_PER_MINUTE = 6000
DEFAULT_AUDIENCE = "reelpulse"
ANONYMOUS = Principal(Role.ADMIN, "anonymous", None, "auth disabled")


class Authenticator:
    def __init__(
        self,
        keys: ApiKeyStore,
        *,
        enabled: bool = True,
        jwt_secret: str | None = None,
        jwt_audience: str = DEFAULT_AUDIENCE,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.keys = keys
        self.enabled = enabled
        self.jwt_secret = jwt_secret
        self.jwt_audience = jwt_audience
        self.limiter = limiter or RateLimiter(DEFAULT_RATE_PER_MINUTE)
        self._static: list[tuple[str, Principal]] = []  # (sha256 of the key, principal)

    @classmethod
    def from_settings(cls, settings: Settings, engine: sa.Engine) -> "Authenticator":
        auth = cls(
            ApiKeyStore(engine),
            enabled=settings.auth_enabled,
            jwt_secret=settings.jwt_secret or None,  # an empty variable means none
            jwt_audience=settings.jwt_audience or DEFAULT_AUDIENCE,
            limiter=RateLimiter(settings.rate_limit_per_minute),
        )
        if settings.dev_api_key:
            auth.add_static_key(
                settings.dev_api_key, Role.ADMIN, label="development (REELPULSE_DEV_API_KEY)"
            )
        return auth

    def add_static_key(self, raw: str, role: Role, *, label: str) -> None:
        """A key held in memory only (the development key from the environment)."""
        digest = hashlib.sha256(raw.encode()).hexdigest()
        self._static.append((digest, Principal(role, f"static:{digest[:12]}", None, label)))

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller, from `X-API-Key` or `Authorization: Bearer` (an API key or a JWT).
        Raises AuthError 401. With auth disabled everyone is an anonymous admin."""
        found = self._without_io(headers)
        if isinstance(found, Principal):
            return found
        principal = self.keys.lookup(found)
        if principal is None:
            raise unauthenticated("unknown or revoked API key")
        return principal

    def authenticate_cached(self, headers: Mapping[str, str]) -> Principal | None:
        """`authenticate` without I/O: the caller, or None when only the key store's
        database can tell (a key not looked up in the last `cache_seconds`). Raises
        AuthError 401 as `authenticate` does. For the event loop: one thread hop per key
        and cache period instead of one per request."""
        found = self._without_io(headers)
        if isinstance(found, Principal):
            return found
        known, principal = self.keys.peek(found)
        if not known:
            return None
        if principal is None:
            raise unauthenticated("unknown or revoked API key")
        return principal

    def _without_io(self, headers: Mapping[str, str]) -> Principal | str:
        """The caller when no key store read is needed (auth off, a JWT, a static key),
        else the raw API key to look up. Raises AuthError 401."""
        if not self.enabled:
            return ANONYMOUS
        raw = headers.get("x-api-key") or headers.get("X-API-Key")
        if not raw:
            authorization = headers.get("authorization") or headers.get("Authorization") or ""
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() != "bearer" or not credentials.strip():
                raise unauthenticated()
            raw = credentials.strip()
            if not raw.startswith(PREFIX):
                if not self.jwt_secret:
                    raise unauthenticated("bearer tokens are not enabled on this server")
                return tokens.verify(raw, secret=self.jwt_secret, audience=self.jwt_audience)
        return self._static_lookup(raw) or raw

    def _static_lookup(self, raw: str) -> Principal | None:
        digest = hashlib.sha256(raw.encode()).hexdigest()
        found = None
        for known, principal in self._static:
            if hmac.compare_digest(known, digest):
                found = principal
        return found

    def charge(self, principal: Principal, cost: float = 1.0) -> None:
        """Take from the caller's bucket; raises RateLimited."""
        wait = self.limiter.take(principal.key_id, cost)
        if wait > 0:
            raise RateLimited(wait)
