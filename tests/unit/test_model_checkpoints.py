"""Every online-model projection's state is a function of its events alone, and its
outputs may be computed at flush.

The runner checkpoints a model's state now and then, not with every batch; after a restart
it loads the checkpoint and replays the events between the checkpoint's position and the
tracked position through a view that does nothing, then goes on with real views. So:
given a workload's events 1..N, when a projection processes 1..k, is dumped and loaded
into a fresh instance, replays k+1..M silently and processes M+1..N with a recording view,
then its view calls for M+1..N and its final state equal those of one uninterrupted run.

And a projection reports an output as a callable that a view may evaluate at flush: per
batch, the last row per key evaluated at flush equals the one evaluated at the call (what
the projections wrote before outputs were deferred).
"""

import pickle
import random
from collections.abc import Callable
from typing import Any

import pytest
from support.model_views import CallLog, LastPerKey, NullView, events_for
from support.readmodels import structure

from adapters.sentiment import VaderScorer
from projections.alert_rules import AlertRulesProjection
from projections.bot_detector import BotDetectorProjection
from projections.comment_moderation import CommentModerationProjection
from projections.emerging_trends import EmergingTrendsProjection
from projections.engagement_features import EngagementFeaturesProjection
from projections.moderation_risk import ModerationRiskProjection
from projections.recommendations import RecommendationsProjection
from projections.sentiment import SentimentProjection
from projections.virality import ViralityProjection

PROJECTIONS: list[Callable[[], Any]] = [
    EngagementFeaturesProjection, ViralityProjection, RecommendationsProjection,
    ModerationRiskProjection, BotDetectorProjection, EmergingTrendsProjection,
    AlertRulesProjection, CommentModerationProjection,
]  # fmt: skip


class VaderSentimentProjection(SentimentProjection):
    def __init__(self) -> None:
        super().__init__(VaderScorer())


PROJECTIONS.append(VaderSentimentProjection)
IDS = [p.name for p in PROJECTIONS]  # type: ignore[attr-defined]


def state_of(projection: Any) -> Any:
    return structure(pickle.loads(projection.dump_state()))


def process(projection: Any, events: list[tuple[int, Any]], view: Any) -> None:
    for position, event in events:
        projection.process(event, position, view)


@pytest.mark.parametrize("make", PROJECTIONS, ids=IDS)
def test_a_checkpoint_and_a_silent_replay_continue_exactly_like_one_run(make):
    events = events_for(make())
    n = len(events)
    k, m = n // 3, (2 * n) // 3
    one, one_calls = make(), CallLog()
    process(one, events[:m], LastPerKey())
    process(one, events[m:], one_calls)

    first = make()
    process(first, events[:k], CallLog())
    restarted, restarted_calls = make(), CallLog()
    restarted.load_state(first.dump_state())
    process(restarted, events[k:m], NullView())
    process(restarted, events[m:], restarted_calls)

    assert one_calls.calls, "the last third of the workload made no view call"
    assert restarted_calls.calls == one_calls.calls
    assert state_of(restarted) == state_of(one)


@pytest.mark.parametrize("make", PROJECTIONS, ids=IDS)
def test_outputs_evaluated_at_flush_equal_outputs_evaluated_at_the_event(make):
    events = events_for(make())
    eager, deferred = LastPerKey(eager=True), LastPerKey()
    a, b = make(), make()
    rng = random.Random(7)
    start = 0
    while start < len(events):
        batch = events[start : start + rng.choice((1, 5, 50, 400))]
        process(a, batch, eager)
        process(b, batch, deferred)
        eager.flush()
        deferred.flush()
        start += len(batch)
    assert sum(map(len, eager.batches)) > 0
    assert deferred.batches == eager.batches
