"""Access control: API keys and JWTs (who is calling), roles and per-route policies (what
they may do), per-key rate limits. The rules are in policy.py."""
