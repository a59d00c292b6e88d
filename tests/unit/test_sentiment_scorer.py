"""The harness's sentiment scorer: accuracy on audience comments beside the majority so far
and the polar-word rule, counted on exactly the scored comments; turn alerts matched to
the truth's turns; nothing without truth; no prediction depends on a later event."""

from datetime import timedelta
from uuid import UUID

import pytest

from adapters.evaluation import sentiment as scorer
from adapters.evaluation.core import Run
from adapters.evaluation.leakage import check
from adapters.workload.model import GroundTruth, SentimentTurn
from unit.test_sentiment import START, VIDEO, commented, published

TEXTS = [  # (text, truth): VADER gets the first four right, the rule the first two
    ("love this", "positive"),
    ("this is terrible", "negative"),
    ("not bad at all", "positive"),
    ("what camera do you use", "neutral"),
    ("mid", "negative"),
    ("me encanta", "positive"),  # Spanish: counted, not scored
]


def run_of(truth: bool = True) -> Run:
    events = [published()] + [
        commented(text, START + timedelta(minutes=i), i) for i, (text, _) in enumerate(TEXTS)
    ]
    ids = [UUID(int=5000 + i) for i in range(len(TEXTS))]
    ground = GroundTruth(
        (), (), comment_sentiment={c: t for c, (_, t) in zip(ids, TEXTS, strict=True)},
        comment_language={c: "es" if "encanta" in x else "en"
                          for c, (x, _) in zip(ids, TEXTS, strict=True)},
        sentiment_turns=(SentimentTurn(VIDEO, START),),
    )  # fmt: skip
    return Run(list(enumerate(events, start=1)), ground if truth else None, 1)


def test_accuracy_beside_the_majority_so_far_and_the_polar_word_rule():
    figures = {f.measure: f for f in scorer.score(run_of())}
    accuracy = figures["comment accuracy"]
    assert accuracy.samples == 5  # the Spanish comment is not scored
    assert accuracy.value == pytest.approx(4 / 5)
    # the majority before each: none (neutral), positive, the tie's first (positive),
    # positive, positive: right once (the 3rd)
    assert accuracy.trivial == pytest.approx(1 / 5)
    assert accuracy.rule == pytest.approx(3 / 5)  # love, terrible, and "what camera" neutral
    assert figures["comments scored (share)"].value == pytest.approx(5 / 6)
    assert figures["turn alert recall"].value == 0.0  # too few comments for a turn


def test_the_rule_counts_polar_words_and_emoji_without_negation():
    assert scorer.polar_words("love this ❤️") == "positive"
    assert scorer.polar_words("not bad at all") == "negative"  # no negation
    assert scorer.polar_words("song name?") == "neutral"


def test_no_figures_without_truth_and_no_leak():
    assert scorer.score(run_of(truth=False)) == []
    assert check(scorer.predict, run_of().events) == []
