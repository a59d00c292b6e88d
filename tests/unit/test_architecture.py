"""Dependency rules import-linter cannot express (it only sees top-level external packages)."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STDLIB = set(sys.stdlib_module_names)


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_domain_uses_only_stdlib_and_eventsourcing_domain():
    offenders = {
        path: sorted(
            n
            for n in names
            if n.split(".")[0] not in STDLIB
            and not n.startswith("domain")
            and n != "eventsourcing.domain"
        )
        for path, names in imported_modules("domain").items()
    }
    assert {p: n for p, n in offenders.items() if n} == {}


def test_command_side_never_touches_a_concrete_recorder():
    for package in ("commands", "projections", "queries"):
        for path, names in imported_modules(package).items():
            bad = [
                n
                for n in names
                if n in ("eventsourcing.sqlite", "eventsourcing.postgres", "eventsourcing.popo")
            ]
            assert bad == [], f"{path} imports {bad}"


def test_only_bootstrap_and_settings_read_the_environment():
    readers = []
    for package in ("domain", "commands", "projections", "queries", "adapters"):
        for path in (ROOT / package).rglob("*.py"):
            code = "\n".join(line.split("#")[0] for line in path.read_text().splitlines())
            if "os.environ" in code or "os.getenv" in code:
                readers.append(str(path.relative_to(ROOT)))
    assert readers == []
