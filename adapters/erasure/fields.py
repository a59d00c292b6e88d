"""Which fields of which events are personal data that `forget` must be able to erase.

Each entry names the field that is encrypted and the field that names its subject (the
person whose key encrypts it). Everything else in these events, and every other event,
is stored as before.

Checked against domain/ (see docs/erasure.md for the reasoning):
* Engagement.Commented.text: free text written by a viewer -> viewer_id.
* Viewers carry no handle, name or contact detail in any event: a viewer is an opaque
  UUID issued by the platform's account service, so there is no "viewer handle" to erase.
* Creator.Registered/ProfileUpdated handle and display_name are a creator's public
  profile, and ModerationCase.Appealed.statement / Decided.note are part of a moderation
  record kept for accountability; creators and moderators are not subjects here.
"""

from dataclasses import dataclass

from eventsourcing.utils import get_topic

from domain.engagement import Engagement

ERASED = "[erased]"  # what an erased field reads as, everywhere (replay, projections, API)


@dataclass(frozen=True)
class ErasableField:
    field: str  # encrypted
    subject: str  # the field holding the subject's id (a UUID)


ERASABLE: dict[str, tuple[ErasableField, ...]] = {
    get_topic(Engagement.Commented): (ErasableField("text", "viewer_id"),),
}
