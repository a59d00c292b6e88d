"""A PostgreSQL server for the test session, and a fresh database for every test.

By default a throwaway local server: Debian's PostgreSQL binaries, a temporary data
directory, a free port on 127.0.0.1, durability switched off (tests never need to survive
a power cut). When REELPULSE_TEST_DATABASE_URL is set, that server is used instead and
nothing is started. Either way tests get URLs of databases created for them alone.
"""

import atexit
import contextlib
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import psycopg
from psycopg import sql

ENV_VAR = "REELPULSE_TEST_DATABASE_URL"
PREFERRED_MAJOR = "15"
START_TIMEOUT = 30.0  # seconds for the server to accept connections
COMMAND_TIMEOUT = 120.0  # seconds for initdb / pg_ctl to finish
MIN_TMPFS_FREE = 1 << 30  # Docker's default 64 MB /dev/shm is too small for a cluster
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    # Test data is disposable: skip the work that only protects against crashes.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class PostgresUnavailable(RuntimeError):
    """No server could be started or reached; the message says how to get one."""


class PostgresServer:
    """A server that tests may create databases on. `stop()` ends what we started."""

    def __init__(self, admin_url: str, *, on_stop: Callable[[], None] | None = None) -> None:
        self.admin_url = _strip_query(admin_url)
        self._on_stop = on_stop
        self._lock = threading.Lock()
        self._admin: psycopg.Connection | None = None
        # Set when the server does not let us CREATE DATABASE: then each test gets a schema.
        self.uses_schemas = False

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """Yield the URL of a new, empty database (or schema); drop it afterwards."""
        name = f"reelpulse_test_{uuid4().hex[:12]}"
        url = self._create(name)
        try:
            yield url
        finally:
            self._drop(name)

    def stop(self) -> None:
        with self._lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
        if self._on_stop is not None:
            on_stop, self._on_stop = self._on_stop, None
            on_stop()

    # -- internals -----------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection:
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)
        return self._admin

    def _create(self, name: str) -> str:
        with self._lock:
            conn = self._connection()
            if not self.uses_schemas:
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    return _with_path(self.admin_url, name)
                except psycopg.errors.InsufficientPrivilege:
                    self.uses_schemas = True
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
            return _with_query(self.admin_url, f"schema={name}")

    def _drop(self, name: str) -> None:
        with self._lock:
            conn = self._connection()
            if self.uses_schemas:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(drop.format(sql.Identifier(name)))
                return
            # FORCE ends connections a test left open, so one leak cannot fail later tests.
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def start_session_server() -> PostgresServer:
    """The external server named by REELPULSE_TEST_DATABASE_URL, else a local one."""
    external = os.environ.get(ENV_VAR, "").strip()
    if external:
        _wait_until_accepting(_strip_query(external), START_TIMEOUT)
        return PostgresServer(external)
    return start_local_server()


def start_local_server() -> PostgresServer:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries (initdb) found under /usr/lib/postgresql/*/bin: "
            "install Debian's `postgresql` package, set "
            f"{ENV_VAR}=postgresql://user:password@host:port/db, or deselect with "
            "-m 'not postgres'"
        )
    cluster = LocalCluster(bin_dir)
    try:
        cluster.init()
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    atexit.register(cluster.destroy)  # in case the session ends without its teardown
    return PostgresServer(cluster.admin_url, on_stop=cluster.destroy)


def find_bin_dir() -> Path | None:
    """Debian's server binaries: version 15 when installed, else the newest."""
    initdbs = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    found = {p.parent.parent.name: p.parent for p in initdbs}
    if PREFERRED_MAJOR in found:
        return found[PREFERRED_MAJOR]
    if found:
        return found[max(found, key=_major_version)]
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


class LocalCluster:
    """A throwaway cluster in a temp dir. As root, runs everything as `postgres`."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        # PostgreSQL refuses to run as root; CI runs as root.
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="reelpulse-pg-", dir=_base_dir(self.run_as)))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._destroyed = False
        if self.run_as:
            shutil.chown(self.root, user=self.run_as)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        settings = {**SERVER_SETTINGS, "unix_socket_directories": f"'{self.root}'"}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# reelpulse test server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self, attempts: int = 3) -> None:
        # The free port can be taken between choosing and binding it: retry with another.
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            try:
                self._run(
                    "pg_ctl",
                    "start",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    str(int(START_TIMEOUT)),
                    "-s",
                    "-o",
                    f"-p {self.port}",
                )
            except PostgresUnavailable:
                if attempt == attempts:
                    raise
                continue
            _wait_until_accepting(self.admin_url, START_TIMEOUT)
            return

    def destroy(self) -> None:
        if self._destroyed:
            return
        self._destroyed = True
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-s")
            except PostgresUnavailable:
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-s")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command: Sequence[str] = [str(self.bin_dir / program), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        env = {**os.environ, "LC_ALL": "C"}
        try:
            subprocess.run(
                command,
                cwd=self.root,
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
        except subprocess.CalledProcessError as e:
            raise PostgresUnavailable(
                f"{' '.join(command)} failed ({e.returncode}):\n{e.stdout}{e.stderr}"
                f"{self._log_tail()}"
            ) from None
        except subprocess.TimeoutExpired:
            raise PostgresUnavailable(
                f"{' '.join(command)} did not finish in {COMMAND_TIMEOUT:g}s{self._log_tail()}"
            ) from None

    def _log_tail(self, lines: int = 20) -> str:
        try:
            tail = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\nserver log:\n" + "\n".join(tail)


def _wait_until_accepting(url: str, timeout: float) -> None:
    started = time.monotonic()
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError as e:
            waited = time.monotonic() - started
            if not _may_come_up(e) or waited >= timeout:
                raise PostgresUnavailable(
                    f"cannot connect to PostgreSQL at {_redacted(url)} (waited {waited:.1f}s): {e}"
                ) from None
            time.sleep(0.1)  # bounded by the timeout; only while the server boots


def _may_come_up(error: psycopg.OperationalError) -> bool:
    """True while nobody answers yet or the server is still starting; a refused login or
    a missing database will not fix itself, so those fail at once."""
    return any(sign in str(error) for sign in _NOT_UP_YET)


_NOT_UP_YET = ("Connection refused", "starting up", "timeout expired", "No such file")


def _base_dir(run_as: str | None) -> str:
    """Where the data dir goes: tmpfs when roomy (CREATE DATABASE is ~10x faster there),
    else the temp dir; its ancestors must be traversable by `run_as` (root's may not be)."""
    candidates = [tempfile.gettempdir(), "/tmp"]
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= MIN_TMPFS_FREE:
        candidates.insert(0, str(shm))
    for base in candidates:
        if run_as is None or _traversable_by_others(Path(base)):
            return base
    raise PostgresUnavailable(f"no temp dir traversable by user {run_as} among {candidates}")


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path.resolve(), *path.resolve().parents])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _major_version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _strip_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _with_path(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", "", ""))


def _with_query(url: str, query: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
