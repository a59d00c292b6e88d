"""The credentials tests use: a fixed development admin key (REELPULSE_DEV_API_KEY), so
that servers started by tests and clients in tests agree without parsing output."""

DEV_API_KEY = "rp_dev_0123456789abcdef0123456789abcdef"
HEADERS = {"X-API-Key": DEV_API_KEY}
ENV = {"REELPULSE_DEV_API_KEY": DEV_API_KEY}
