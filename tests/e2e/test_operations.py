"""Operations endpoints: /metrics parsed with the Prometheus parser, /healthz, /readyz."""

import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from support.auth import HEADERS

from adapters.bootstrap import bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings
from domain.engagement import Engagement


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_show_projection_lag_moving_and_command_counters(tmp_path: Path):
    # Projections do not run in this process, so their lag is visible, then caught up.
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", projections_in_process=False)
    container = bootstrap(settings)
    try:
        with TestClient(create_app(container), headers=HEADERS) as client:
            r = client.post(
                "/v1/creators", json={"handle": "metrics", "display_name": "M", "region": "US"}
            )
            creator = r.json()["id"]
            for _ in range(3):
                client.post("/v1/videos", json={"creator_id": creator, "duration_seconds": 10})
            client.post(f"/v1/videos/{uuid.uuid4()}/likes", json={"viewer_id": str(uuid.uuid4())})

            before = scrape(client)
            # 5 events: the registration also reserved the creator's handle.
            assert before[("reelpulse_projection_lag_events", (("projection", "stats"),))] == 5
            assert before[("reelpulse_store_head_position", ())] == 5
            key = ("reelpulse_commands_total", (("command", "POST /v1/videos"), ("outcome", "ok")))
            assert before[key] >= 3
            assert (
                before[("reelpulse_errors_total", (("code", "video_not_found"), ("status", "404")))]
                >= 1
            )
            assert before[("reelpulse_events_recorded_total", (("type", "Video.Published"),))] >= 3

            container.run_projections_until_idle()
            after = scrape(client)
            assert after[("reelpulse_projection_lag_events", (("projection", "stats"),))] == 0
            assert after[("reelpulse_projection_position", (("projection", "stats"),))] == 5
    finally:
        container.close()


def test_health_and_readiness(tmp_path: Path):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        projections_in_process=False,
        readiness_max_lag_events=1,
    )
    container = bootstrap(settings)
    try:
        with TestClient(create_app(container), headers=HEADERS) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert client.get("/readyz").status_code == 200
            for handle in ("aa", "bb"):
                client.post(
                    "/v1/creators", json={"handle": handle, "display_name": "x", "region": "US"}
                )
            not_ready = client.get("/readyz")
            assert not_ready.status_code == 503
            # Two registrations: two creators and their two handle reservations.
            assert not_ready.json()["checks"]["projections"]["lag"]["stats"] == 4
            container.run_projections_until_idle()
            assert client.get("/readyz").status_code == 200
    finally:
        container.close()


def test_logs_are_json_and_carry_the_request_id(tmp_path: Path, capsys):
    import json
    import logging

    from adapters.observability.logging import configure_logging

    configure_logging("info", json=True)
    container = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}"))
    try:
        with TestClient(create_app(container), headers=HEADERS) as client:
            app_log = logging.getLogger("reelpulse.test")
            client.app.add_api_route("/v1/log-probe", lambda: app_log.info("probe") or {})
            r = client.get("/v1/log-probe", headers={"X-Request-ID": "req-12345"})
            assert r.headers["x-request-id"] == "req-12345"
        lines = [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if line.startswith("{")
        ]
        probe = [rec for rec in lines if rec.get("message") == "probe"]
        assert probe and probe[0]["request_id"] == "req-12345" and probe[0]["level"] == "INFO"
    finally:
        logging.getLogger().handlers.clear()
        container.close()


def test_readiness_reports_a_failing_projection_at_once_and_quarantines(tmp_path: Path):
    """Issue 15: /readyz said ready while a projection retried one event for good, until
    its lag passed the bound. A failing projection is not ready at once, whatever its lag;
    one that quarantined an event and went on is current: 200, `degraded`, with counts
    (also on /metrics)."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'q.db'}",
        projections_in_process=False,
        readiness_max_lag_events=10_000,
    )
    container = bootstrap(settings)
    try:
        with TestClient(create_app(container), headers=HEADERS) as client:
            r = client.post(
                "/v1/creators", json={"handle": "qq", "display_name": "Q", "region": "US"}
            )
            container.run_projections_until_idle()
            with container.read_engine.begin() as conn:  # an error of the system: stuck
                conn.execute(sa.text("ALTER TABLE rm_creators RENAME TO rm_creators_away"))
            client.post("/v1/videos", json={"creator_id": r.json()["id"], "duration_seconds": 5})
            container.projections.group.round()  # stats fails on its batch (lag 1)
            stuck = client.get("/readyz")
            assert stuck.status_code == 503, stuck.text
            assert "stats" in stuck.json()["checks"]["projections"]["failing"]
            with container.read_engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE rm_creators_away RENAME TO rm_creators"))
            deadline = time.monotonic() + 30  # the group retries a failed runner after 1 s
            while client.get("/readyz").json()["status"] != "ready":
                assert time.monotonic() < deadline, client.get("/readyz").text
                container.projections.group.round()
                time.sleep(0.05)  # polling a condition, bounded by the deadline

            topic = get_topic(Engagement.Viewed)  # an undecodable event: quarantined
            container.store.recorder.insert_events([StoredEvent(uuid.uuid4(), 1, topic, b"?")])
            container.run_projections_until_idle()
            degraded = client.get("/readyz")
            assert degraded.status_code == 200, degraded.text
            body = degraded.json()
            assert body["status"] == "degraded"
            assert body["checks"]["projections"]["quarantined"]["stats"] == 1
            samples = scrape(client)
            key = ("reelpulse_projection_quarantined_events", (("projection", "stats"),))
            assert samples[key] == 1
    finally:
        container.close()
