"""Progressive baselines of a binary classifier: judged at the prediction's time, from
labels known strictly before it."""

import math
from datetime import UTC, datetime, timedelta

from adapters.evaluation.binary import SHRINK, Scored, figures, progressive_baselines
from adapters.evaluation.core import Target

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_a_label_counts_only_for_predictions_made_after_it_arrived():
    scored = [
        Scored(at(0), at(5), 0.9, rule=3.0, label=True),
        Scored(at(1), at(6), 0.1, rule=0.0, label=False),
        Scored(at(5), at(9), 0.5, rule=3.0, label=True),  # made when the first label arrives
        Scored(at(7), at(9), 0.5, rule=3.0, label=False),
    ]
    base = progressive_baselines(scored, edges=(1.0,))
    assert base.trivial[:3] == [0.5, 0.5, 0.5]  # nothing known strictly before hour 5
    assert base.trivial[3] == (1 + 1) / (2 + 2)  # two labels known by hour 7, one positive
    # The rule's bin (score >= 1) has seen one positive: its rate, shrunk to the base rate.
    assert math.isclose(base.rule[3], (1 + SHRINK * 0.5) / (1 + SHRINK))


def test_warm_up_predictions_teach_the_baselines_but_are_not_scored():
    scored = [Scored(at(i), at(i + 0.5), 0.8 if i % 2 else 0.2, float(i % 2), bool(i % 2),
                     counted=i >= 10) for i in range(40)]  # fmt: skip
    auc, loss = figures("m", scored, (0.5,), rule_name="r", auc_target=Target(),
                        log_loss_target=Target(lower_is_better=True))  # fmt: skip
    assert auc.samples == 30 and auc.value == 1.0 and auc.rule == 1.0
    assert loss.value < loss.trivial and loss.rule < loss.trivial  # the rule's bins learned
