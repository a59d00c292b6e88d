"""Every setting is in the README's configuration table, and every row names a setting.

adapters/settings.py is the one place configuration is read; the README's table is how
operators learn of it. A field added without a row (or a row left for a removed field)
fails here, with the rows to write.
"""

import re
from pathlib import Path

from adapters.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
# Variables the tests read, not the application: listed in the table, not in Settings.
TEST_ONLY = {"REELPULSE_TEST_DATABASE_URL", "REELPULSE_TEST_KAFKA_BOOTSTRAP"}


def documented() -> set[str]:
    """The variables named in the first column of the configuration table."""
    text = README.read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `REELPULSE_"):
            first_column = line.split("|")[1]
            names.update(re.findall(r"`(REELPULSE_[A-Z0-9_]+)`", first_column))
    return names


def settings_variables() -> set[str]:
    prefix = Settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def test_every_setting_is_in_the_readme_table() -> None:
    missing = sorted(settings_variables() - documented())
    rows = "\n".join(
        f"| `{name}` | `{Settings.model_fields[name.removeprefix('REELPULSE_').lower()].default}` "
        f"| {Settings.model_fields[name.removeprefix('REELPULSE_').lower()].description} |"
        for name in missing
    )
    assert not missing, f"settings missing from README.md's configuration table:\n{rows}"


def test_every_row_of_the_table_is_a_setting() -> None:
    stale = sorted(documented() - settings_variables() - TEST_ONLY)
    assert not stale, f"README.md documents variables Settings does not read: {stale}"
