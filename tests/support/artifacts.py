"""Files tests leave in the temp directory (server and fault logs): kept only when the
test that made them fails, and then named in the report; deleted otherwise.

`keep_on_failure(path)` registers a file. Those made while a test ran are deleted after
it passed, kept and named in its report ("kept for this failure") when it failed; those
made by fixtures (a setup may serve several tests) at the session's end, unless some test
failed (then they are named). tests/conftest.py uses the two hooks below; `-p
support.artifacts` loads them as a plugin (tests/e2e/test_artifacts.py).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_current: list[Path] = []  # made during the running test (or the session, between tests)
_session: list[Path] = []


def keep_on_failure(path: str | os.PathLike[str]) -> str:
    """Register `path` (a file this test made); returns it as a str."""
    _current.append(Path(path))
    return str(path)


def settle(failed: bool) -> list[Path]:
    """After a test: delete its files when it passed; return the kept ones when it failed."""
    files, _current[:] = list(_current), []
    if failed:
        return [f for f in files if f.exists()]
    for f in files:
        f.unlink(missing_ok=True)
    return []


def session_files() -> list[Path]:
    return _session


def adopt_pending() -> None:
    """Files registered outside any test (fixtures' setup): removed at session end."""
    _session.extend(_current)
    _current.clear()


def remove_session_files() -> None:
    for f in _session:
        f.unlink(missing_ok=True)
    _session.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "setup" and report.passed:
        adopt_pending()
        return
    kept = settle(failed=report.failed)
    if kept:
        report.sections.append(("kept for this failure", "\n".join(str(p) for p in kept)))


def pytest_sessionfinish(session: pytest.Session) -> None:
    adopt_pending()
    if not session.testsfailed:
        remove_session_files()
        return
    for path in _session:
        if path.exists():
            print(f"\nkept after failures: {path}")
