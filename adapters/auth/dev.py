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
