"""What a store holds after a fault run, read by a fresh container: how often each
client_event_id was stored, and the read models checked against a recount of history."""

from collections import Counter

from adapters.bootstrap import bootstrap
from adapters.readmodel.recount import RecountReport, all_events, recount_check
from adapters.settings import Settings


def stored_client_events(database_url: str) -> tuple[Counter[str], RecountReport]:
    container = bootstrap(Settings(database_url=database_url))
    try:
        stored = Counter(
            cid
            for event in all_events(container.store, container.content.mapper)
            if (cid := getattr(event, "client_event_id", None)) is not None
        )
        report = recount_check(container.store, container.content.mapper, container.read_engine)
    finally:
        container.close()
    return stored, report
