"""Replay and export: backtests on a sandbox, never on the live read models."""
