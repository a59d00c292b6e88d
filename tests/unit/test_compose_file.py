"""deploy/compose.yaml (for users; nothing here runs it) names only real settings and
commands: a renamed setting or command fails here, not in a user's `docker compose up`."""

from pathlib import Path

import yaml

from adapters.cli import app
from adapters.kafka.envelope import FEEDS
from adapters.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"
PREFIX = Settings.model_config["env_prefix"]


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def reelpulse_services() -> dict:
    return {n: s for n, s in services().items() if s.get("image") == "reelpulse:local"}


def test_every_reelpulse_variable_is_a_setting():
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    for name, service in services().items():
        for variable in service.get("environment") or {}:
            if variable.startswith(PREFIX):
                assert variable in known, f"{name}: {variable} is not in adapters/settings.py"


def test_every_command_is_a_cli_command():
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    commands |= {g.name for g in app.registered_groups}
    for name, service in reelpulse_services().items():
        assert service["command"][0] in commands, f"{name}: {service['command']}"


def test_the_layout_of_docs_scaling():
    s = reelpulse_services()
    assert {"migrate", "serve", "relay", "ingest"} <= set(s)
    assert s["serve"]["environment"]["REELPULSE_KAFKA_PROJECTIONS"] == "true"
    feeds = {}
    for name, service in s.items():
        if service["command"][0] == "kafka-project":
            feed = service["command"][service["command"].index("--feed") + 1]
            assert "replicas" in service["deploy"], name
            feeds[feed] = name
    assert set(feeds) == set(FEEDS), feeds
    assert services()["postgres"]["image"] == "postgres:15"
    assert services()["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
