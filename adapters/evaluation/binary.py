"""Progressive figures of an online binary classifier beside its two baselines.

A scorer collects every prediction the model made (its time, probability and the simple
rule's raw score, read from the prediction's own features) and the label that arrived
later in event time. The baselines are made progressive too, so all three are judged on
the same footing, at the prediction's time and from labels known strictly before it:

- trivial: the base rate of the labels known so far, Laplace-smoothed ((k + 1) / (n + 2));
- rule: its raw score ranks (ROC AUC as is); for log loss it is calibrated online, as a
  data scientist would: the rate of positives among earlier labels whose score fell in the
  same bin, shrunk towards the base rate when the bin has seen few labels.
"""

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from adapters.evaluation.core import Figure, Target, log_loss, roc_auc

SHRINK = 4.0  # pseudo-labels of the base rate in every rule bin


@dataclass(frozen=True)
class Scored:
    """One prediction and its label (known at `labelled_at`, after `at`)."""

    at: datetime
    labelled_at: datetime
    probability: float
    rule: float
    label: bool
    counted: bool = True  # False: a warm-up prediction, learned from but not scored


@dataclass(frozen=True)
class Baselines:
    trivial: list[float]  # probability per scored prediction, in the input's order
    rule: list[float]


def progressive_baselines(scored: Sequence[Scored], edges: Sequence[float]) -> Baselines:
    """The trivial and the calibrated-rule probabilities for every scored prediction.
    `edges` split the rule's score into bins (bisect: bin i holds edges[i-1] <= s < edges[i])."""
    labels = sorted(range(len(scored)), key=lambda i: scored[i].labelled_at)
    bins = len(edges) + 1
    seen, positives = [0] * bins, [0] * bins
    n = k = j = 0
    trivial, rule = [0.0] * len(scored), [0.0] * len(scored)
    for i in sorted(range(len(scored)), key=lambda i: scored[i].at):
        at = scored[i].at
        while j < len(labels) and scored[labels[j]].labelled_at < at:
            known = scored[labels[j]]
            b = bisect.bisect_right(edges, known.rule)
            seen[b] += 1
            positives[b] += int(known.label)
            n += 1
            k += int(known.label)
            j += 1
        base = (k + 1) / (n + 2)
        b = bisect.bisect_right(edges, scored[i].rule)
        trivial[i] = base
        rule[i] = (positives[b] + SHRINK * base) / (seen[b] + SHRINK)
    return Baselines(trivial, rule)


def figures(
    model: str,
    scored: Sequence[Scored],
    edges: Sequence[float],
    *,
    rule_name: str,
    auc_target: Target,
    log_loss_target: Target,
) -> list[Figure]:
    """ROC AUC and log loss of the model, the base rate and the rule over the counted
    predictions (none without any); the baselines learn from every label."""
    all_base = progressive_baselines(scored, edges)
    keep = [i for i, s in enumerate(scored) if s.counted]
    if not keep:
        return []
    labels = [scored[i].label for i in keep]
    model_p = [scored[i].probability for i in keep]
    trivial = [all_base.trivial[i] for i in keep]
    rule, rule_p = [scored[i].rule for i in keep], [all_base.rule[i] for i in keep]
    n = len(keep)
    return [
        Figure(model, "roc_auc", roc_auc(labels, model_p), roc_auc(labels, trivial),
               roc_auc(labels, rule), n, auc_target, "base_rate", rule_name),
        Figure(model, "log_loss", log_loss(labels, model_p), log_loss(labels, trivial),
               log_loss(labels, rule_p), n, log_loss_target, "base_rate",
               f"{rule_name} (binned rate)"),
    ]  # fmt: skip
