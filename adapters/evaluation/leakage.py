"""The leakage check: no model's output may depend on events after the time it was made.

For a cut time T, the model runs twice: on the whole stream, and on the stream's prefix
up to the first event after T (log order), followed by a `Tick` at T that moves event time
on without adding anything (so outputs due by T are made). Every output the full run made
at or before T must be in the cut run, with the same score and every feature equal. A
feature computed from later events (a label, a final count, an event processed before the
output it follows) differs between the two, and is named in a `Leak`. The cuts are spread
over the stream, plus the times of some of the model's own outputs: cut exactly there, an
output that counted the event which made it due (the first one after its time) differs.

Models are black boxes here: a `Predict` function runs one on events and returns every
`Prediction` it made, so the same check covers every feature of every model.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.evaluation.core import Prediction

Predict = Callable[[Sequence[tuple[int, Any]]], list[Prediction]]


@dataclass(frozen=True)
class Tick:
    """Event time passing, and nothing else (projections only read its `occurred_at`)."""

    occurred_at: datetime


@dataclass(frozen=True)
class Leak:
    model: str
    subject: str
    at: datetime
    cut: datetime
    feature: str  # "score", a feature name, or "missing" (no such output in the cut run)
    full: float | None
    cut_value: float | None

    def line(self) -> str:
        return (
            f"{self.model} {self.subject} @{self.at.isoformat()}: {self.feature} is "
            f"{self.full} with all events, {self.cut_value} with events before "
            f"{self.cut.isoformat()}"
        )


def cut_times(events: Sequence[tuple[int, Any]], cuts: int = 4) -> list[datetime]:
    """`cuts` times spread evenly over the events' event-time span (interior points)."""
    times = [e.occurred_at for _, e in events if getattr(e, "occurred_at", None) is not None]
    if not times:
        return []
    first, last = min(times), max(times)
    return [first + (last - first) * (i / (cuts + 1)) for i in range(1, cuts + 1)]


def prefix(events: Sequence[tuple[int, Any]], cut: datetime) -> list[tuple[int, Any]]:
    """The events before the first one after `cut` (log order), then a Tick at cut."""
    out: list[tuple[int, Any]] = []
    for position, event in events:
        when = getattr(event, "occurred_at", None)
        if when is not None and when > cut:
            out.append((position, Tick(cut)))
            return out
        out.append((position, event))
    last = out[-1][0] + 1 if out else 1
    out.append((last, Tick(cut)))
    return out


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def output_times(outputs: Sequence[Prediction], count: int = 6) -> list[datetime]:
    """`count` of the outputs' times, spread evenly over them."""
    times = sorted({p.at for p in outputs})
    if len(times) <= count:
        return times
    return [times[round(i * (len(times) - 1) / (count - 1))] for i in range(count)]


def check(
    predict: Predict, events: Sequence[tuple[int, Any]], cuts: Sequence[datetime] | None = None
) -> list[Leak]:
    """Every difference between the full run's outputs by each cut and the cut run's."""
    full = predict(events)
    leaks: list[Leak] = []
    if cuts is None:
        cuts = sorted(set(cut_times(events)) | set(output_times(full)))
    for cut in cuts:
        early = [p for p in full if p.at <= cut]
        if not early:
            continue
        seen = {(p.model, p.subject, p.at): p for p in predict(prefix(events, cut))}
        for p in early:
            q = seen.get((p.model, p.subject, p.at))
            if q is None:
                leaks.append(Leak(p.model, p.subject, p.at, cut, "missing", p.score, None))
                continue
            if not _same(p.score, q.score):
                leaks.append(Leak(p.model, p.subject, p.at, cut, "score", p.score, q.score))
            for name in sorted(set(p.features) | set(q.features)):
                a, b = p.features.get(name), q.features.get(name)
                if not _same(a, b):
                    leaks.append(Leak(p.model, p.subject, p.at, cut, name, a, b))
    return leaks


def leaking_features(leaks: Sequence[Leak]) -> dict[str, int]:
    """How many differences each (model, feature) shows: the leaking features, by name."""
    out: dict[str, int] = {}
    for leak in leaks:
        key = f"{leak.model}.{leak.feature}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))
