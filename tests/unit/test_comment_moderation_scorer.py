"""The comment moderation scorer: flags counted against the truth on the comments written
while the model could flag, beside random flags at its rate and a keyword blocklist."""

import pytest

from adapters.evaluation.comment_moderation import blocklisted, predict, score
from adapters.evaluation.core import Run
from adapters.workload.model import GroundTruth

from .test_comment_moderation import PARAMS, World


def test_flags_are_scored_against_the_truth_beside_both_baselines():
    w = World().trained()
    flagged = w.comment("you are a worthless loser")  # toxic, flagged
    missed = w.comment("get free coins at gr4bfree dot com")  # toxic, words it never saw
    w.comment("i hate mondays so much")  # benign; the blocklist flags it
    w.comment("love the moves")
    truth = GroundTruth((), (), toxic_comments=frozenset({flagged, missed}))
    events = list(enumerate(w.events, start=1))

    precision, recall, auc = score(Run(events, truth), PARAMS)

    assert (precision.value, precision.samples, precision.target.minimum) == (1.0, 1, 0.8)
    assert precision.trivial == pytest.approx(2 / 4)  # random flags: the toxic share
    assert precision.rule == pytest.approx(2 / 3)  # "loser", "free", "hate"
    assert (recall.value, recall.trivial, recall.rule) == (0.5, 0.25, 1.0)
    assert auc.trivial == 0.5 and auc.samples == 4
    # Every comment is predicted (the leakage check sees them all), armed or not: with
    # the default warm-up (20 decisions) none of these ten could be flagged.
    predictions = predict(events)
    assert len(predictions) == 10 and not any(p.features["armed"] for p in predictions)


def test_a_replay_without_truth_has_no_figures():
    w = World().trained()
    assert score(Run(list(enumerate(w.events, start=1)), None), PARAMS) == []


@pytest.mark.parametrize(
    ("text", "hit"),
    [("you LOSER", True), ("visit bit.ly/x", True), ("free coins", True),
     ("l0ser", False), ("i won the game", True), ("lovely", False)],
)  # fmt: skip
def test_the_blocklist_matches_whole_words_and_links(text, hit):
    assert blocklisted(text) is hit
