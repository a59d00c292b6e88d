"""`forget viewer X`: shred the viewer's key and drop what the read models derived.

1. The viewer's data key is deleted (the key-table row stays as the durable record of
   the erasure: no key is ever created again for that id). From then on every sealed
   field of the viewer reads as fields.ERASED, in every process within the key cache
   bound, in the store, in replays and in rebuilds. No event is rewritten.
2. `Erasure.ViewerForgotten` is recorded (once per viewer): projections holding model
   state derived from the viewer (the recommendations model's latent factors, seen set
   and follows) drop it when they reach the event, live, in a rebuild and in a replay.
3. The store is scanned for the viewer's erasable events: `sealed_events` are now
   unreadable; `legacy_plaintext_events` were written before field encryption and are NOT
   shredded (that needs a rewrite of the log; see docs/erasure.md).
4. After the projections caught up with the log (bounded wait), rows keyed by the viewer
   are deleted or pseudonymised in one read-model transaction (PURGES).

Idempotent: forgetting twice deletes nothing the second time and reports so. A rebuilt
read model gets the viewer's rows back from the (intact) events: `reapply_erasures` runs
step 4 for every erased subject; the rebuild tool runs it after every switch and
in-place rebuild (docs/erasure.md).
"""

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa

from adapters.bootstrap import Container
from adapters.erasure.fields import ERASABLE
from adapters.erasure.keys import KeyStore
from adapters.erasure.mapper import SEALED_TYPE, keys_for
from adapters.readmodel import tables as t
from adapters.readmodel.comment_tables import rm_comment_cases
from adapters.readmodel.recount import notification_pages

NIL = UUID(int=0)  # stands in for an erased viewer where a row must stay (follow pairs)
SCAN_PAGE = 5000


@dataclass(frozen=True)
class Purge:
    table: sa.Table
    column: str
    replace_with: Any = "delete"  # "delete" the row, or set the column to this value
    set_column: str | None = None  # ... or set this other column (rows matched by `column`)


# Read-model rows derived from a viewer's events, by table. Follow pairs stay (with the
# viewer pseudonymised) because the stats projection needs the pair's creator to count a
# later unfollow; case timelines keep the report, without its reporter.
PURGES: tuple[Purge, ...] = (
    Purge(t.rm_view_pairs, "viewer_id"),
    Purge(t.rm_kafka_view_pairs, "viewer_id"),
    Purge(t.rm_viewer_sessions, "viewer_id"),
    Purge(t.rm_session_videos, "viewer_id"),
    Purge(t.rm_reco_viewers, "viewer_id"),
    Purge(t.rm_reco_seen, "viewer_id"),
    Purge(t.rm_follow_pairs, "viewer_id", NIL),
    Purge(t.rm_case_timeline, "actor_id", None),
    Purge(rm_comment_cases, "author_id", None, set_column="text"),  # the case stays, textless
)


@dataclass(frozen=True)
class ErasureReport:
    viewer_id: UUID
    key_deleted: bool  # False: no key existed (never wrote sealed data, or forgotten before)
    already_erased: bool
    sealed_events: int  # events whose personal fields are now unreadable
    legacy_plaintext_events: int  # written before encryption: still readable
    rows_dropped: dict[str, int] = field(default_factory=dict)
    projections_caught_up: bool = True
    position: int = 0  # the log's head when the erasure was made
    event_position: int = 0  # where Erasure.ViewerForgotten was recorded (or found)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["viewer_id"] = str(self.viewer_id)
        return data

    def summary(self) -> str:
        rows = sum(self.rows_dropped.values())
        text = (
            f"viewer {self.viewer_id}: key {'deleted' if self.key_deleted else 'absent'}"
            f"{' (already erased)' if self.already_erased else ''}, "
            f"{self.sealed_events} events shredded, {rows} read-model rows dropped"
        )
        if self.legacy_plaintext_events:
            text += (
                f", {self.legacy_plaintext_events} legacy plaintext events NOT shredded "
                "(written before encryption)"
            )
        if not self.projections_caught_up:
            text += "; projections were behind: run forget again once they caught up"
        return text


def key_store(container: Container) -> KeyStore:
    return keys_for(container.store.recorder)


def forget_viewer(
    container: Container,
    viewer_id: UUID,
    *,
    wait_seconds: float = 10.0,
    progress: Callable[[int], None] | None = None,
) -> ErasureReport:
    keys = key_store(container)
    already = viewer_id in set(keys.erased_subjects())
    position = container.head_position
    deleted = keys.erase(viewer_id)
    # The log's record of it: projections drop model state they derived from the viewer
    # when they reach it (recorded once; a second forget finds the first). The purge
    # below waits only for what came before it.
    recorded = container.engagement.forget_viewer(viewer_id)
    sealed, legacy = count_subject_events(container, viewer_id, progress=progress)
    reached = container.projections.wait_for(position, wait_seconds)
    caught_up = all(reached.get(n, 0) >= position for n in container.projections.names)
    rows = purge_read_models(container.write_engine, [viewer_id])
    return ErasureReport(
        viewer_id=viewer_id,
        key_deleted=deleted,
        already_erased=already,
        sealed_events=sealed,
        legacy_plaintext_events=legacy,
        rows_dropped=rows,
        projections_caught_up=caught_up,
        position=position,
        event_position=recorded.position,
    )


def count_subject_events(
    container: Container, subject: UUID, *, progress: Callable[[int], None] | None = None
) -> tuple[int, int]:
    """(sealed, plaintext) erasable events of `subject`, read as stored (no key needed)."""
    hexid = subject.hex
    sealed = legacy = 0
    for page in notification_pages(container.store, list(ERASABLE), SCAN_PAGE):
        for n in page:
            if hexid.encode() not in n.state:  # cheap pre-filter on the raw bytes
                continue
            state = orjson.loads(n.state)
            for spec in ERASABLE[n.topic]:
                if _uuid_hex(state.get(spec.subject)) != hexid:
                    continue
                value = state.get(spec.field)
                if isinstance(value, dict) and value.get("_type_") == SEALED_TYPE:
                    sealed += 1
                elif isinstance(value, str):
                    legacy += 1
        if progress is not None:
            progress(page[-1].id)
    return sealed, legacy


def _uuid_hex(value: Any) -> str | None:
    if isinstance(value, dict):  # eventsourcing's UUIDAsHex transcoding
        return str(value.get("_data_"))
    return str(value) if value is not None else None


def purge_read_models(engine: sa.Engine, subjects: Iterable[UUID]) -> dict[str, int]:
    """Delete or pseudonymise every read-model row keyed by these subjects, in one
    transaction; rows affected per table."""
    ids = list(subjects)
    counts: dict[str, int] = {}
    if not ids:
        return counts
    with engine.begin() as conn:
        for purge in PURGES:
            column = purge.table.c[purge.column]
            if purge.replace_with == "delete":
                stmt: Any = sa.delete(purge.table).where(column.in_(ids))
            else:
                target = purge.table.c[purge.set_column or purge.column]
                stmt = (
                    sa.update(purge.table)
                    .where(column.in_(ids), target.is_distinct_from(purge.replace_with))
                    .values({target.name: purge.replace_with})
                )
            counts[purge.table.name] = conn.execute(stmt).rowcount or 0
    return counts


def reapply_erasures(container: Container) -> dict[str, int]:
    """Purge the read models of every subject erased so far (after a rebuild)."""
    return purge_read_models(container.write_engine, key_store(container).erased_subjects())
