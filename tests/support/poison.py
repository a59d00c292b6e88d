"""Events the commands refuse, stored through another door (the recorder) for fault tests."""

import uuid
from typing import Any

from domain.video import Video


def publish_with_nul(c: Any, creator_id: uuid.UUID) -> uuid.UUID:
    """A Published event whose caption and sound id hold U+0000, stored with the
    application's own mapper and recorder: another door than the commands, which refuse
    it now (tests/unit/test_text_values.py). PostgreSQL text cannot hold it. The video id."""
    creator = c.content.repository.get(creator_id)
    video = Video.publish(
        video_id=uuid.uuid4(), creator=creator, caption="ok", hashtags=["nul"],
        sound_id="s", duration_seconds=10.0, occurred_at=c.content.clock(),
    )  # fmt: skip
    (event,) = video.collect_events()
    object.__setattr__(event, "caption", "x\x00y")
    object.__setattr__(event, "sound_id", "s\x00")
    c.store.recorder.insert_events([c.content.mapper.to_stored_event(event)])
    return video.id
