"""What moderators decided, from the replayed events: the labels alerts are scored against.

A video is *harmful* when its moderation case's final outcome in the replayed history is
restrict or remove (the last `Decided`; an appeal `overturned` turns it into keep), and
*benign* when that outcome is keep. A video whose case was never decided in the replayed
history is *undecided*: alerts on it count neither as true nor as false positives.
"""

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from domain.moderation import AppealResolution, ModerationCase, Outcome

HARMFUL = frozenset({Outcome.RESTRICT.value, Outcome.REMOVE.value})


@dataclass
class Decisions:
    case_video: dict[UUID, UUID] = field(default_factory=dict)
    outcome: dict[UUID, str] = field(default_factory=dict)  # video -> final outcome
    decided_at: dict[UUID, datetime] = field(default_factory=dict)  # video -> first decision

    def observe(self, event: object) -> None:
        match event:
            case ModerationCase.Opened():
                self.case_video[event.originator_id] = event.video_id
            case ModerationCase.Decided():
                video = self.case_video.get(event.originator_id)
                if video is not None:
                    self.outcome[video] = event.outcome
                    self.decided_at.setdefault(video, event.occurred_at)
            case ModerationCase.AppealResolved():
                video = self.case_video.get(event.originator_id)
                if video is not None and event.resolution == AppealResolution.OVERTURNED.value:
                    self.outcome[video] = Outcome.KEEP.value

    @property
    def harmful(self) -> set[str]:
        return {str(v) for v, o in self.outcome.items() if o in HARMFUL}

    @property
    def decided(self) -> set[str]:
        return {str(v) for v in self.outcome}

    def score(self, alerted: set[str]) -> dict[str, object]:
        """Precision and recall of a set of alerted video ids against the decisions."""
        harmful, decided = self.harmful, self.decided
        tp = len(alerted & harmful)
        fp = len((alerted & decided) - harmful)
        return {
            "alerted_videos": len(alerted),
            "true_positives": tp,
            "false_positives": fp,
            "undecided": len(alerted - decided),
            "false_negatives": len(harmful - alerted),
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / len(harmful) if harmful else None,
        }
