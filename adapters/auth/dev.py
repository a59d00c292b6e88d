"""The embedded default is not open: `serve` makes sure some admin can get in."""

from typing import Any

from adapters.auth.keys import ApiKeyStore
from adapters.auth.principal import Role


def ensure_dev_key(container: Any) -> str | None:
    """The new development admin key to print, or None when none is needed: auth off,
    REELPULSE_DEV_API_KEY set (the app accepts it), keys already exist (use
    `reelpulse keys create`), or not in development mode."""
    settings = container.settings
    if not settings.auth_enabled or settings.dev_api_key:
        return None
    store = ApiKeyStore(container.read_engine)
    if store.active_count() > 0 or not settings.development:
        return None
    raw, _ = store.create(Role.ADMIN, label="development (created by reelpulse serve)")
    return raw


def dev_key_line(container: Any) -> str:
    """The banner's line about getting in: a new development key (printed once), or where
    the key in use comes from, or how to get one. A key from the environment is named by
    its variable, never printed."""
    settings = container.settings
    if not settings.auth_enabled:
        return "no API key needed: REELPULSE_AUTH_ENABLED=false"
    if settings.dev_api_key:
        return "dev API key: the value of REELPULSE_DEV_API_KEY (admin, X-API-Key)"
    if (key := ensure_dev_key(container)) is not None:
        return f"dev API key: {key}  (admin, X-API-Key; shown once)"
    if ApiKeyStore(container.read_engine).active_count() == 0:  # production, no key yet
        return "no API key yet: create one with reelpulse keys create --role admin"
    return (
        "API key: the development key was shown at the first start only; lost it? "
        "create another: reelpulse keys create --role admin"
    )
