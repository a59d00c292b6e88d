"""Processes started together on one fresh PostgreSQL database all come up.

Given an empty database, when four processes open ReelPulse on it at the same moment (as
N `kafka-project` workers or a compose file's services do), then every one of them
starts: the table creation and the migrations run one process at a time
(adapters/bootstrap.setup_lock). Before the lock, about one start in four failed with
"tuple concurrently updated" or a duplicate key from CREATE ... IF NOT EXISTS.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

PROCESSES = 4
ROUNDS = 2
OPEN = (
    "import sys; from adapters.bootstrap import bootstrap; from adapters.settings import "
    "Settings; bootstrap(Settings(database_url=sys.argv[1])).close()"
)


def test_processes_opening_one_fresh_database_together_all_start(pg_server, tmp_path: Path):
    failures = []
    for _ in range(ROUNDS):
        with pg_server.fresh_database() as url:
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", OPEN, url],
                    stderr=subprocess.PIPE,
                    text=True,
                    cwd=tmp_path,
                )
                for _ in range(PROCESSES)
            ]
            for proc in procs:
                _, err = proc.communicate(timeout=120)
                if proc.returncode != 0:
                    failures.append(err.strip().splitlines()[-3:])
    assert failures == []
