"""The leakage check catches a feature that reads the future, and nothing in an honest model.

A toy model predicts, one hour after each video's first event, from the views it has
seen. Its honest feature counts views before the prediction; the leaky variants read the
whole stream (a final count, a label), or count the event that triggered the prediction
(an event after the prediction time) before predicting.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.evaluation.core import Prediction
from adapters.evaluation.leakage import Tick, check, cut_times, leaking_features, prefix

START = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class View:
    video: str
    occurred_at: datetime


def stream() -> list[tuple[int, Any]]:
    """Views of 6 videos, each first seen 90 minutes after the previous one, every 7
    minutes for 84 minutes (log order = event time order)."""
    events = [
        View(f"v{v}", START + v * 1.5 * HOUR + timedelta(minutes=7 * i))
        for v in range(6)
        for i in range(13)
    ]
    events.sort(key=lambda e: e.occurred_at)
    return list(enumerate(events, start=1))


class Toy:
    """Predicts at first view + 1 h. `late_count`: counts an event before the predictions
    it makes due (the bug the Tick exists to catch)."""

    def __init__(self, *, late_count: bool = False) -> None:
        self.late_count = late_count
        self.views: dict[str, int] = {}
        self.due: dict[str, datetime] = {}
        self.out: list[Prediction] = []

    def process(self, event: Any) -> None:
        if self.late_count and isinstance(event, View):
            self._count(event)
        for video, at in sorted(self.due.items(), key=lambda kv: kv[1]):
            if at <= event.occurred_at:
                del self.due[video]
                n = float(self.views[video])
                self.out.append(Prediction("toy", video, at, n / 10, {"views_1h": n}))
        if not self.late_count and isinstance(event, View):
            self._count(event)

    def _count(self, event: View) -> None:
        if event.video not in self.views:
            self.views[event.video] = 0
            self.due[event.video] = event.occurred_at + HOUR
        self.views[event.video] += 1


def honest(events: Sequence[tuple[int, Any]]) -> list[Prediction]:
    model = Toy()
    for _, e in events:
        model.process(e)
    return model.out


def reads_final_count(events: Sequence[tuple[int, Any]]) -> list[Prediction]:
    """The honest model plus a feature from the whole stream (a final view count)."""
    totals: dict[str, int] = {}
    for _, e in events:
        if isinstance(e, View):
            totals[e.video] = totals.get(e.video, 0) + 1
    return [
        Prediction(
            p.model, p.subject, p.at, p.score, {**p.features, "views_total": totals[p.subject]}
        )
        for p in honest(events)
    ]


def counts_the_trigger(events: Sequence[tuple[int, Any]]) -> list[Prediction]:
    model = Toy(late_count=True)
    for _, e in events:
        model.process(e)
    return model.out


def test_an_honest_model_shows_no_leak() -> None:
    events = stream()
    assert honest(events), "the toy must predict for the check to mean anything"
    assert check(honest, events) == []


def test_a_feature_computed_from_the_whole_stream_is_caught_by_name() -> None:
    leaks = check(reads_final_count, stream())
    assert leaks
    assert set(leaking_features(leaks)) == {"toy.views_total"}  # views_1h stays clean
    leak = leaks[0]
    assert leak.at <= leak.cut and leak.full != leak.cut_value
    assert "views_total" in leak.line()


def test_counting_the_event_after_the_prediction_time_is_caught() -> None:
    # Views fall every 7 minutes, so the view that triggers a prediction (the video's own,
    # at 63 minutes) is after its time.
    leaks = check(counts_the_trigger, stream())
    assert leaks
    assert {leak.feature for leak in leaks} <= {"views_1h", "score"}
    assert "toy.views_1h" in leaking_features(leaks)


def test_the_cut_run_ends_with_a_tick_at_the_cut() -> None:
    events = stream()
    cut = START + 2 * HOUR
    cut_events = prefix(events, cut)
    assert isinstance(cut_events[-1][1], Tick) and cut_events[-1][1].occurred_at == cut
    assert all(e.occurred_at <= cut for _, e in cut_events[:-1])
    assert [p for p, _ in cut_events[:-1]] == [p for p, e in events if e.occurred_at <= cut]
    assert len(cut_times(events, 4)) == 4
