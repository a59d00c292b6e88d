"""Query side of the online models: predictions and progressive metrics."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True)
class ViralityPrediction:
    video_id: UUID
    predicted_at: datetime
    probability: float
    features: dict[str, float]
    labelled_at: datetime | None
    viral: bool | None
    views_24h: int | None


@dataclass(frozen=True)
class ModelMetric:
    model: str
    metric: str
    value: float
    samples: int


@dataclass(frozen=True)
class FeatureVector:
    id: UUID
    computed_at: datetime  # event time of the last event that changed it
    values: dict[str, float]


class ModelsReader(ABC):
    @abstractmethod
    def video_features(self, video_id: UUID) -> FeatureVector | None: ...

    @abstractmethod
    def creator_features(self, creator_id: UUID) -> FeatureVector | None: ...

    @abstractmethod
    def virality(self, video_id: UUID) -> ViralityPrediction | None: ...

    @abstractmethod
    def metrics(self) -> list[ModelMetric]: ...
