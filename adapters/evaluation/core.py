"""The evaluation harness's vocabulary: a run, a prediction, a figure and its target.

A scorer (one module per model in this package) takes a `Run` (the events of one
workload or one replay window, in log order, and the generator's ground truth when there
is one) and returns `Figure`s: one measure of the model, beside the same measure of its
trivial baseline and of the simple rule a data scientist would try first, all computed
on the same events in the same run. Scorers run the projections in memory over the
events, predict-then-learn (progressive validation), and score a prediction only with a
label known later in event time.

`Target` says what a figure must reach: an absolute floor (or ceiling), a factor over
the simple rule, and beating both baselines; `verdict` decides it over held-out seeds:
the model's mean minus its spread must clear each baseline's mean.
"""

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.workload.model import GroundTruth


@dataclass(frozen=True)
class Run:
    """What a scorer sees. `truth` is None when the events come from a store (a replay
    window): scorers whose labels need the generator's truth then return no figures."""

    events: Sequence[tuple[int, Any]]  # (position, domain event), in log order
    truth: GroundTruth | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Prediction:
    """One output a model made at event time `at` (a probability, a score, a list...).
    The leakage check compares these between a run and the same run cut at a time."""

    model: str
    subject: str
    at: datetime
    score: float
    features: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """What a figure must reach. `minimum` is a floor (a ceiling when lower is better);
    `over_rule` a factor over the simple rule's figure (2.0: at least twice the rule's)."""

    minimum: float | None = None
    over_rule: float | None = None
    lower_is_better: bool = False
    beat_baselines: bool = True

    def describe(self) -> str:
        parts = []
        op = "<=" if self.lower_is_better else ">="
        if self.minimum is not None:
            parts.append(f"{op} {self.minimum:g}")
        if self.over_rule is not None:
            parts.append(f"{op} {self.over_rule:g}x rule")
        if self.beat_baselines:
            parts.append("beats both baselines")
        return ", ".join(parts) or "reported only"


REPORTED = Target(beat_baselines=False)  # a figure shown for context, judged by nothing


@dataclass(frozen=True)
class Figure:
    model: str
    measure: str
    value: float
    trivial: float | None  # the trivial baseline's figure (base rate, majority, random...)
    rule: float | None  # the simple rule's figure (first-hour views, a threshold...)
    samples: int
    target: Target = REPORTED
    trivial_name: str = ""
    rule_name: str = ""

    @property
    def key(self) -> str:
        return f"{self.model}.{self.measure}"


Scorer = Callable[[Run], list[Figure]]


# -- aggregation over held-out seeds -------------------------------------------------------
def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and spread (the sample standard deviation; 0 for one value)."""
    clean = [v for v in values if v is not None and math.isfinite(v)]
    if not clean:
        return math.nan, math.nan
    spread = statistics.stdev(clean) if len(clean) > 1 else 0.0
    return statistics.fmean(clean), spread


@dataclass(frozen=True)
class Summary:
    """One figure over the held-out seeds, and whether it meets its target."""

    model: str
    measure: str
    target: Target
    values: tuple[float, ...]
    trivial: tuple[float, ...]
    rule: tuple[float, ...]
    samples: tuple[int, ...]
    trivial_name: str
    rule_name: str

    @property
    def mean(self) -> tuple[float, float]:
        return mean_spread(self.values)

    def verdict(self) -> tuple[bool | None, str]:
        """(met, why). None: only reported."""
        t = self.target
        if not t.beat_baselines and t.minimum is None and t.over_rule is None:
            return None, "reported"
        mean, spread = self.mean
        if math.isnan(mean):
            return False, "no value"
        sign = -1.0 if t.lower_is_better else 1.0
        # The model's pessimistic figure: mean minus spread (plus, when lower is better).
        worst = mean - sign * spread
        reasons = []
        if t.minimum is not None and sign * worst < sign * t.minimum:
            reasons.append(f"{worst:.3f} misses {t.minimum:g}")
        rule_mean = mean_spread(self.rule)[0] if self.rule else math.nan
        if t.over_rule is not None:
            if math.isnan(rule_mean):
                reasons.append("no rule figure")
            elif sign * worst < sign * t.over_rule * rule_mean:
                reasons.append(f"{worst:.3f} misses {t.over_rule:g}x rule {rule_mean:.3f}")
        if t.beat_baselines:
            for name, values in (("trivial", self.trivial), ("rule", self.rule)):
                base = mean_spread(values)[0] if values else math.nan
                if not math.isnan(base) and sign * worst <= sign * base:
                    reasons.append(f"{worst:.3f} does not beat {name} {base:.3f}")
        return (not reasons), ("; ".join(reasons) or "met")


def summarize(runs: Mapping[int, Sequence[Figure]]) -> list[Summary]:
    """Figures of several seeds, grouped by (model, measure), in first-seen order."""
    order: dict[str, list[Figure]] = {}
    for figures in runs.values():
        for f in figures:
            order.setdefault(f.key, []).append(f)
    out = []
    for figs in order.values():
        first = figs[0]
        out.append(
            Summary(
                first.model, first.measure, first.target,
                tuple(f.value for f in figs),
                tuple(f.trivial for f in figs if f.trivial is not None),
                tuple(f.rule for f in figs if f.rule is not None),
                tuple(f.samples for f in figs), first.trivial_name, first.rule_name,
            )
        )  # fmt: skip
    return out


# -- small, exact metrics (scikit-learn's) -------------------------------------------------
def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Exact ROC AUC (river's ROCAUC is a 10-threshold approximation). NaN with one class."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return math.nan
    return float(roc_auc_score(list(labels), list(scores)))


def log_loss(labels: Sequence[bool], probabilities: Sequence[float]) -> float:
    from sklearn.metrics import log_loss as sk_log_loss

    if not labels:
        return math.nan
    clipped = [min(max(p, 1e-15), 1 - 1e-15) for p in probabilities]
    return float(sk_log_loss(list(labels), clipped, labels=[False, True]))


def precision_recall(
    true_positives: int, alerts: int, found: int, targets: int
) -> tuple[float, float]:
    """Precision = true-positive alerts / alerts; recall = targets found / targets."""
    return (
        true_positives / alerts if alerts else 0.0,
        found / targets if targets else 0.0,
    )


def median(values: Sequence[float]) -> float:
    """The median, NaN for none (a figure with no sample)."""
    return statistics.median(values) if values else math.nan
