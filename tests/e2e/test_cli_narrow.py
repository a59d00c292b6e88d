"""Names are never cut (issue 16): `projections status` printed `moder...` (ambiguous:
moderation or moderation_risk?) when not a terminal or in a narrow one. Run as a user
would, with stdout a pipe and COLUMNS=40: every projection name appears whole, nothing is
shortened with an ellipsis; at 250 columns it is the table."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from adapters.bootstrap import bootstrap
from adapters.projections.registry import projection_specs
from adapters.settings import Settings
from domain.engagement import Engagement

NAMES = [spec.name for spec in projection_specs()]


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/store.db"
    c = bootstrap(Settings(database_url=url, projections_in_process=False))
    try:
        c.content.register_creator(handle="narrow", display_name="N", region="DE")
        topic = get_topic(Engagement.Viewed)  # one quarantined event for the second table
        c.store.recorder.insert_events([StoredEvent(uuid.uuid4(), 1, topic, b"?")])
        c.run_projections_until_idle()
    finally:
        c.close()
    return url


def _cli(url: str, columns: int, *args: str) -> str:
    env = {**os.environ, "REELPULSE_DATABASE_URL": url, "COLUMNS": str(columns)}
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "projections", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_status_never_cuts_a_name(store: str):
    narrow = _cli(store, 40, "status", "--sample", "0")
    lines = narrow.splitlines()
    assert "…" not in narrow and "..." not in narrow, narrow
    for name in NAMES:
        assert any(line.startswith(f"{name}: ") for line in lines), (name, narrow)
    wide = _cli(store, 250, "status", "--sample", "0")
    assert "┃ projection" in wide and all(f"│ {name} " in wide for name in NAMES), wide


def test_quarantine_never_cuts_a_name(store: str):
    narrow = _cli(store, 40, "quarantine")
    assert "…" not in narrow, narrow
    rows = [line for line in narrow.splitlines() if ": position " in line]
    assert len(rows) >= 2 and any(r.startswith("stats: position ") for r in rows), narrow
    assert all(line.split(": ", 1)[0] in NAMES for line in rows), narrow
