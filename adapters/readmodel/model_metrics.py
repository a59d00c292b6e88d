"""The model metrics a view collects over a batch (rm_model_metrics), written at flush.

Projections report a metric as a callable, valid until their next report of the same
metric: only the batch's last report per metric is evaluated, once, when written."""

from collections.abc import Callable

import sqlalchemy as sa

from adapters.readmodel.bulk import SET, upsert
from adapters.readmodel.tables import rm_model_metrics

COLUMNS = ("model", "metric", "value", "samples")


class MetricBuffer:
    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], tuple[Callable[[], float], int]] = {}

    def add(self, model: str, name: str, samples: int, value: Callable[[], float]) -> None:
        self.pending[(model, name)] = (value, samples)

    def flush(self, conn: sa.Connection) -> bool:
        """Write the batch's metrics; whether there were any."""
        if not self.pending:
            return False
        rows = [(m, n, float(value()), k) for (m, n), (value, k) in self.pending.items()]
        upsert(conn, rm_model_metrics, COLUMNS, rows, key=("model", "metric"),
               update={"value": SET, "samples": SET})  # fmt: skip
        self.pending = {}
        return True
