"""Metrics (Prometheus), health and readiness, structured logs."""
