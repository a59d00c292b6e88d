"""Progressive validation of an online binary classifier: when a label arrives, the
prediction made before it is scored first, then the model learns, so the metrics never
score what the model was trained on. Beside it, the same metrics for the trivial model
that predicts the base rate seen so far (Laplace-smoothed)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from river import metrics

# (model, metric name, samples, value). The value is a callable: a view evaluates it when
# it writes (at flush, once per batch); it is valid until the next report.
Metric = Callable[[str, str, int, Callable[[], float]], None]


@dataclass
class ProgressiveScore:
    roc_auc: Any = field(default_factory=metrics.ROCAUC)
    log_loss: Any = field(default_factory=metrics.LogLoss)
    base_roc_auc: Any = field(default_factory=metrics.ROCAUC)
    base_log_loss: Any = field(default_factory=metrics.LogLoss)
    labels: int = 0
    positives: int = 0

    def update(self, label: bool, probability: float) -> None:
        """Score one earlier prediction (and the base rate's) against its label."""
        base = (self.positives + 1) / (self.labels + 2)
        self.roc_auc.update(label, probability)
        self.log_loss.update(label, probability)
        self.base_roc_auc.update(label, base)
        self.base_log_loss.update(label, base)
        self.labels += 1
        self.positives += int(label)

    def report(self, metric: Metric, model: str, baseline: str) -> None:
        """The four current figures, through a view's `metric` method. A label wave (the
        watermark passing hundreds of due videos in one batch) reports hundreds of times:
        the figures are computed only for the last report, when the view writes."""
        metric(model, "roc_auc", self.labels, self.roc_auc.get)
        metric(model, "log_loss", self.labels, self.log_loss.get)
        metric(baseline, "roc_auc", self.labels, self.base_roc_auc.get)
        metric(baseline, "log_loss", self.labels, self.base_log_loss.get)
