"""Cross-process wake-ups on PostgreSQL: LISTEN on the channel the recorder NOTIFYs on."""

import logging
import threading
from urllib.parse import urlsplit, urlunsplit

import psycopg

from commands.base import SharedStore

log = logging.getLogger(__name__)


class PostgresCommitListener:
    """Wakes this process's followers and projections when any process commits events."""

    def __init__(self, database_url: str, channel: str, store: SharedStore) -> None:
        parts = urlsplit(database_url)
        self.conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))
        self.channel = channel
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pg-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(
                        psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self.channel))
                    )
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.store.notify_committed()
            except Exception as e:  # reconnect after a database restart
                log.warning("LISTEN %s interrupted (%s); reconnecting", self.channel, e)
                self._stop.wait(1.0)
