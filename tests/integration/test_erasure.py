"""Erasure (issue 8): `forget viewer` shreds the viewer's comment texts and drops what the
read models derived from the viewer, while every event stays in the log and replays.

Given viewers A and B who viewed, commented, followed and reported, when A is forgotten:
A's comment texts read as "[erased]" through the application, a full replay of the log
and a rebuild of the projections; B's are intact; the log holds the same events at the
same positions; A's key is gone from the key table; A's read-model rows are gone, and stay
gone after a rebuild once erasures are re-applied. Plus: events written before field
encryption (legacy plaintext), and forgetting twice.
"""

import pickle
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
import sqlalchemy as sa
from eventsourcing.persistence import Mapper

import adapters.bootstrap as bootstrap_module
from adapters.bootstrap import Container, bootstrap
from adapters.erasure import ERASED, ShreddingMapper, install_shredding, keys_for
from adapters.erasure.mapper import SEALED_TYPE
from adapters.erasure.service import forget_viewer, reapply_erasures
from adapters.projections.manager import ProjectionManager
from adapters.projections.registry import OWNED_ROWS
from adapters.projections.reset import reset_projection
from adapters.readmodel import tables as t
from adapters.readmodel.comment_tables import rm_comment_cases
from adapters.readmodel.recount import all_events
from adapters.settings import Settings
from commands.engagement import Signal
from domain.engagement import Engagement

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
A_TEXTS = ["A's first comment, with a phone number 555-0100", "A again"]
B_TEXT = "B says hello"
# Read models keyed by a viewer (rm_follow_pairs keeps the row, pseudonymised).
VIEWER_TABLES = (
    t.rm_view_pairs, t.rm_viewer_sessions, t.rm_session_videos, t.rm_reco_viewers,
    t.rm_reco_seen, t.rm_follow_pairs,
)  # fmt: skip


@pytest.fixture
def shredding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook open_shared_store makes (install_shredding is idempotent, so this stays
    harmless once the hook is in adapters/eventstore/factory.py)."""
    original = bootstrap_module.open_shared_store

    def open_with_shredding(*args: Any, **kwargs: Any) -> Any:
        store = original(*args, **kwargs)
        install_shredding(store.factory, store.recorder)
        return store

    monkeypatch.setattr(bootstrap_module, "open_shared_store", open_with_shredding)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def container(shredding: None, db_url: str) -> Iterator[Container]:
    c = bootstrap(Settings(database_url=db_url))
    assert isinstance(c.engagement.mapper, ShreddingMapper)
    yield c
    c.close()


class World:
    def __init__(self, c: Container) -> None:
        self.c = c
        self.a, self.b = uuid4(), uuid4()
        creator = c.content.register_creator(
            handle=f"c{uuid4().hex[:8]}", display_name="C", region="US", occurred_at=T0
        ).id
        self.creator = creator
        self.videos = [
            c.content.publish_video(
                creator_id=creator, caption=f"v{i}", hashtags=["x"], sound_id=None,
                duration_seconds=30, occurred_at=T0 + timedelta(seconds=i),
            ).id
            for i in range(2)
        ]  # fmt: skip
        self.comments: dict[UUID, tuple[UUID, str]] = {}  # comment id -> viewer, text

    def act(self, viewer: UUID, texts: list[str], minute: int, *, first: bool = True) -> None:
        at = T0 + timedelta(minutes=minute)
        c = self.c
        for n, video in enumerate(self.videos):
            c.engagement.record(Signal("view", viewer, video, occurred_at=at, watch_seconds=10))
            if first:
                c.engagement.record(Signal("like", viewer, video, occurred_at=at))
            if n < len(texts):
                cid = uuid4()
                c.engagement.record(
                    Signal("comment", viewer, video, occurred_at=at, comment_id=cid, text=texts[n])
                )
                self.comments[cid] = (viewer, texts[n])
                if first and n == 0:  # a comment case: the moderators' queue shows the text
                    c.moderation.report_comment(
                        cid, video_id=video, reporter_id=uuid4(), reason="spam", occurred_at=at
                    )
        if first:
            c.engagement.record(Signal("follow", viewer, creator_id=self.creator, occurred_at=at))
            c.moderation.report_video(
                self.videos[0], reporter_id=viewer, reason="spam", occurred_at=at
            )


def comment_texts(c: Container) -> dict[UUID, str]:
    """Every comment's text as a full replay of the log reads it."""
    return {
        e.comment_id: e.text
        for e in all_events(c.store, c.content.mapper)
        if isinstance(e, Engagement.Commented)
    }


def log(c: Container) -> list[tuple[int, str, int]]:
    head = c.head_position
    notes = c.store.recorder.select_notifications(1, head + 1, stop=head)
    return [(n.id, n.topic, n.originator_version) for n in notes]


def viewer_rows(c: Container, viewer: UUID) -> dict[str, int]:
    with c.write_engine.connect() as conn:
        counts = {
            table.name: conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.viewer_id == viewer)
            ).scalar_one()
            for table in VIEWER_TABLES
        }
        counts["rm_case_timeline"] = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.rm_case_timeline)
            .where(t.rm_case_timeline.c.actor_id == viewer)
        ).scalar_one()
    return counts


def reco_state(c: Container) -> Any:
    with c.write_engine.connect() as conn:
        data = conn.execute(
            sa.select(t.projection_checkpoints.c.state).where(
                t.projection_checkpoints.c.name == "recommendations"
            )
        ).scalar_one()
    return pickle.loads(bytes(data))  # our own checkpoint


def queued_texts(c: Container) -> dict[UUID, str | None]:
    """The comment-case queue's text per comment (rm_comment_cases)."""
    q = rm_comment_cases.c
    with c.write_engine.connect() as conn:
        return {r.comment_id: r.text for r in conn.execute(sa.select(q.comment_id, q.text))}


def pending_texts(c: Container) -> set[str]:
    """Comment texts the comment moderation model holds in its checkpointed state."""
    with c.write_engine.connect() as conn:
        data = conn.execute(
            sa.select(t.projection_checkpoints.c.state).where(
                t.projection_checkpoints.c.name == "comment_moderation"
            )
        ).scalar_one()
    state = pickle.loads(bytes(data))  # our own checkpoint
    return {x.text for pending in (state.comments, state.cased) for x in pending.values()}


def rebuild_all(c: Container) -> None:
    """Reset every projection and rebuild it from the first event with fresh instances."""
    fresh = ProjectionManager(c.store, c.content.mapper, c.write_engine, batch_size=7)
    for name in fresh.names:
        reset_projection(c.write_engine, name, OWNED_ROWS[name])
    fresh.run_until_idle()


def test_forget_viewer_shreds_comments_and_drops_derived_rows(container: Container) -> None:
    c = container
    w = World(c)
    w.act(w.a, A_TEXTS, 1)
    w.act(w.b, [B_TEXT], 2)
    c.run_projections_until_idle()

    # Stored sealed: no plaintext comment in the log, the state still JSON.
    with_text = [
        n for n in c.store.recorder.select_notifications(1, 10_000)
        if n.topic.endswith("Engagement.Commented")
    ]  # fmt: skip
    assert len(with_text) == 3
    for n in with_text:
        assert orjson.loads(n.state)["text"]["_type_"] == SEALED_TYPE
        assert not any(text.encode() in n.state for text in [*A_TEXTS, B_TEXT])
    assert comment_texts(c) == {cid: text for cid, (_, text) in w.comments.items()}
    assert all(viewer_rows(c, w.a)[table.name] for table in VIEWER_TABLES)
    assert set(queued_texts(c).values()) == {A_TEXTS[0], B_TEXT}
    assert A_TEXTS[0] in pending_texts(c)
    before = log(c)
    keys = keys_for(c.store.recorder)
    assert keys.has_key(w.a) and keys.has_key(w.b)

    started = time.perf_counter()
    report = forget_viewer(c, w.a, wait_seconds=5)
    elapsed = time.perf_counter() - started
    print(f"\nforget: {report.summary()} in {elapsed * 1000:.0f} ms; rows {report.rows_dropped}")

    assert report.key_deleted and not report.already_erased
    assert (report.sealed_events, report.legacy_plaintext_events) == (2, 0)
    assert report.projections_caught_up
    assert not keys.has_key(w.a) and keys.has_key(w.b)
    assert w.a in keys.erased_subjects()
    # The log is unchanged: same events, same positions, every one still loads; one event
    # is added, the erasure's own record.
    after = log(c)
    assert after[: len(before)] == before
    assert [topic.rsplit(".", 1)[-1] for _, topic, _ in after[len(before) :]] == ["ViewerForgotten"]
    assert report.event_position == after[-1][0]
    # The recommendations model dropped what it learnt of A (factors, seen set), kept B.
    c.run_projections_until_idle()
    reco = reco_state(c)
    assert w.a.int not in reco.viewer_index and w.b.int in reco.viewer_index  # keys: UUID.int
    assert reco.viewer_index[w.b.int] in reco.model.u_latents
    assert len(reco.model.u_latents) == 1
    expected = {cid: ERASED if v == w.a else text for cid, (v, text) in w.comments.items()}
    assert comment_texts(c) == expected
    # Through the application too (aggregate loading runs the same mapper).
    for video in w.videos:
        assert c.engagement.get_engagement(w.a, video).views == 1
    # A fresh process (a new container on the same store, empty key cache) reads the same.
    other = bootstrap(Settings(database_url=c.settings.database_url))
    try:
        assert comment_texts(other) == expected
    finally:
        other.close()

    gone = viewer_rows(c, w.a)
    assert not any(gone.values()), gone
    # The comment queue keeps A's case (its counts) without the text; the classifier's
    # state holds none of A's texts.
    assert set(queued_texts(c).values()) == {None, B_TEXT}
    assert not pending_texts(c) & set(A_TEXTS) and B_TEXT in pending_texts(c)
    assert all(viewer_rows(c, w.b).values())
    with c.write_engine.connect() as conn:  # the follow counter still has its pair row
        pairs = conn.execute(sa.select(t.rm_follow_pairs.c.viewer_id)).scalars().all()
    assert sorted(pairs, key=str) == sorted([UUID(int=0), w.b], key=str)

    # A rebuild brings A's rows back from the (intact) events, except the model's, which
    # the erasure event drops again at its position; re-applying erasures removes the
    # rest, and the comment texts stay erased through the rebuild.
    rebuild_all(c)
    back = viewer_rows(c, w.a)
    assert {name for name, n in back.items() if not n} == {"rm_reco_viewers", "rm_reco_seen"}
    assert w.a not in reco_state(c).viewer_index
    reapply_erasures(c)
    assert set(queued_texts(c).values()) == {None, B_TEXT}
    assert not pending_texts(c) & set(A_TEXTS)
    assert not any(viewer_rows(c, w.a).values())
    assert all(viewer_rows(c, w.b).values())
    assert comment_texts(c) == expected

    # Forgetting twice is harmless and says so; a new comment by A is not stored readable.
    again = forget_viewer(c, w.a, wait_seconds=5)
    assert (again.key_deleted, again.already_erased, again.sealed_events) == (False, True, 2)
    assert sum(again.rows_dropped.values()) == 0
    cid = uuid4()
    c.engagement.record(
        Signal("comment", w.a, w.videos[0], occurred_at=T0 + timedelta(minutes=9),
               comment_id=cid, text="after erasure")
    )  # fmt: skip
    assert comment_texts(c)[cid] == ERASED
    assert not keys.has_key(w.a)


def test_legacy_plaintext_comments_load_and_are_reported(shredding: None, tmp_path: Path) -> None:
    """Events written before field encryption (a plain string) still load, and forget
    reports them as not shredded instead of pretending."""
    url = f"sqlite:///{tmp_path}/store.db"
    # eventsourcing's own Mapper writes plaintext, as the code before this change did.
    old = bootstrap(Settings(database_url=url))
    plain = Mapper(transcoder=old.engagement.mapper.transcoder)
    old.engagement.mapper = old.engagement.events.mapper = plain
    w = World(old)
    w.act(w.a, A_TEXTS[:1], 1)
    old.close()

    c = bootstrap(Settings(database_url=url))  # with the hook again
    try:
        w.c = c
        w.act(w.a, A_TEXTS[1:], 3, first=False)  # one more comment, now sealed
        w.act(w.b, [B_TEXT], 4)
        c.run_projections_until_idle()
        assert comment_texts(c) == {cid: text for cid, (_, text) in w.comments.items()}

        report = forget_viewer(c, w.a, wait_seconds=5)
        print(f"\nforget (legacy): {report.summary()}")
        assert (report.sealed_events, report.legacy_plaintext_events) == (1, 1)
        assert "1 legacy plaintext events NOT shredded" in report.summary()
        texts = comment_texts(c)
        by_text = {text: texts[cid] for cid, (_, text) in w.comments.items()}
        assert by_text == {A_TEXTS[0]: A_TEXTS[0], A_TEXTS[1]: ERASED, B_TEXT: B_TEXT}
    finally:
        c.close()


def test_cli_needs_yes_and_prints_a_summary(shredding: None, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from adapters.cli_erasure import app

    url = f"sqlite:///{tmp_path}/store.db"
    c = bootstrap(Settings(database_url=url))
    try:
        w = World(c)
        w.act(w.a, A_TEXTS, 1)
        c.run_projections_until_idle()
        keys = keys_for(c.store.recorder)
        env = {"REELPULSE_DATABASE_URL": url, "REELPULSE_LOG_JSON": "false"}
        runner = CliRunner()
        refused = runner.invoke(app, ["viewer", str(w.a)], env=env)
        assert refused.exit_code == 2, refused.output
        assert keys.has_key(w.a)

        done = runner.invoke(app, ["viewer", str(w.a), "--yes", "--wait", "0"], env=env)
        assert done.exit_code == 0, done.output
        assert f"viewer {w.a}: key deleted, 2 events shredded" in done.output
        keys.forget_cache()
        assert not keys.has_key(w.a)
        assert comment_texts(c) == dict.fromkeys(w.comments, ERASED)
    finally:
        c.close()


def test_http_route_is_admin_only_and_forgets(container: Container) -> None:
    from fastapi.testclient import TestClient
    from support.auth import HEADERS

    from adapters.auth.principal import Role
    from adapters.http.app import create_app

    app = create_app(container, run_background=False)
    analyst = {"X-API-Key": app.state.auth.keys.create(Role.ANALYST)[0]}
    w = World(container)
    w.act(w.a, A_TEXTS[:1], 1)
    container.run_projections_until_idle()
    with TestClient(app) as client:
        path = f"/v1/admin/erasure/viewers/{w.a}"
        assert client.post(path).status_code == 401
        assert client.post(path, headers=analyst).status_code == 403
        assert client.post(path, headers=HEADERS, params={"wait_seconds": 60}).status_code == 422
        assert keys_for(container.store.recorder).has_key(w.a)
        first = client.post(path, headers=HEADERS)
        assert first.status_code == 200, first.text
        body = first.json()
        assert (body["key_deleted"], body["sealed_events"], body["already_erased"]) == (
            True, 1, False,
        )  # fmt: skip
        assert body["rows_dropped"]["rm_view_pairs"] == 2
        again = client.post(path, headers=HEADERS).json()
        assert (again["key_deleted"], again["already_erased"]) == (False, True)
    assert comment_texts(container) == dict.fromkeys(w.comments, ERASED)
