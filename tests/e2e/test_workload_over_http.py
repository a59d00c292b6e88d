"""The workload generator drives the real REST API (ASGI in process, policy in background)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.bootstrap import Container, bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings
from adapters.workload import WorkloadConfig, drive_http, generate

SMALL = WorkloadConfig(seed=11, days=1, creators=15, viewers=300, views_per_day=800, report_waves=2)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    container = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}"))
    # lifespan starts the policy follower
    with TestClient(create_app(container), headers=HEADERS) as client:
        yield client, container
    container.close()


def test_generated_workload_goes_through_http_and_policy_applies_decisions(served):
    client, container = served
    workload = generate(SMALL)
    progressed: list[int] = []

    stats = drive_http(client, workload.commands, progress=progressed.append)

    assert sum(progressed) == workload.items
    assert stats.recorded + stats.duplicate + stats.rejected == workload.items
    assert stats.recorded > 0.95 * workload.items
    waves = workload.truth.report_waves
    assert waves, "the workload must contain report waves"
    follower = container.followers[0]

    def statuses_match() -> bool:
        return all(
            container.content.get_video(w.video_id).status == w.final_video_status for w in waves
        )

    assert follower.wait_until(statuses_match, timeout=10)
