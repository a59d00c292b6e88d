"""Figures counted while tests run (fuzz cases, stateful commands, ...), printed in pytest's
terminal summary for docs/reliability.md. Under pytest-xdist each worker counts its own
and sends them to the controller when it finishes (tests/conftest.py adds them up)."""

from collections import Counter

FIGURES: Counter[str] = Counter()
