"""Comments whose sentiment the generator knows, and videos whose audience turns negative.

Every organic comment (`_Simulation.view` draws whether a viewer comments) is written by
`CommentWriter.organic`: its mood follows the video's quality (a well-made video draws
more praise), a quarter of comments are neutral questions and remarks, and a video past
its sentiment turn draws mostly negative comments. The viewer's language is fixed per
viewer (about one in nine writes Spanish or Portuguese). The mood and language are
recorded in `sim.comment_sentiment` / `sim.comment_language`: the truth a sentiment
scorer is measured against.

`sentiment_turns` picks a few popular videos per simulated day whose audience turns
negative at a time (a controversy: a bad take, a scam exposed), recorded as
`SentimentTurn`s: from then on the video's organic comments sour, and a pile-on of
viewers who come to say so (each watches, then comments) follows within hours, so that
the turn is visible in the comments. A few other videos are divisive from the start (their
audience argues: many negative comments, but no turn), so that a turn detector is also
tested on what it must not call a turn.

All draws come from generators seeded with the run's seed and a salt of their own, so
the main sequence (organic traffic, follows, bot bursts, report waves) does not move.
"""

import random
from typing import TYPE_CHECKING
from uuid import UUID

from adapters.workload.comment_text import NEGATIVE, NEUTRAL, POSITIVE
from adapters.workload.model import DAY, SentimentTurn
from adapters.workload.vocabulary import _comment

if TYPE_CHECKING:
    from adapters.workload.generator import _Simulation

TURNS_PER_DAY = 3
NEUTRAL_SHARE = 0.25
# After a turn: (positive, negative, neutral) weights of a comment on the video.
TURNED = (0.08, 0.78, 0.14)
PILE_ON = (10, 22)  # comments of the viewers who come to say so
PILE_ON_HOURS = (1.5, 4.0)  # over this long after the turn, most of them early
TURN_AFTER_PUBLISH = (2 * 3600.0, 2 * DAY)  # when a turn can happen in a video's life
# Divisive videos: an audience that argues from the first hour on (rage bait, a hot take),
# with many negative comments but no turn: what a count of negative comments cannot tell
# from a turn.
DIVISIVE_PER_DAY = 1
DIVISIVE = (0.3, 0.55, 0.15)  # (positive, negative, neutral) weights, from the start
DIVISIVE_COMMENTS_PER_HOUR = 3.0
DIVISIVE_HOURS = (12.0, 30.0)  # how long the argument goes on
# Per viewer, by their id: the share writing Spanish and Portuguese (the rest English).
LANGUAGE_SHARES = (("es", 7), ("pt", 4))


def language_of(viewer: UUID) -> str:
    """The language a viewer writes in: fixed per viewer, no draw needed."""
    bucket, low = viewer.int % 100, 0
    for language, share in LANGUAGE_SHARES:
        if low <= bucket < low + share:
            return language
        low += share
    return "en"


class CommentWriter:
    """Writes each comment and records its truth; one per simulation."""

    def __init__(self, seed: int | str) -> None:
        self.rng = random.Random(f"{seed}/sentiment")
        self.turns: dict[int, float] = {}  # video index -> turn time (seconds)
        self.divisive: set[int] = set()  # video indexes whose audience argues from the start
        self.styles: dict[UUID, str] = {}  # comment id -> style (diagnostics, not truth)

    def mood(self, quality: float, turned: bool, divisive: bool = False) -> str:
        rng = self.rng
        if turned or divisive:
            weights = TURNED if turned else DIVISIVE
            return rng.choices((POSITIVE, NEGATIVE, NEUTRAL), weights=weights)[0]
        if rng.random() < NEUTRAL_SHARE:
            return NEUTRAL
        return POSITIVE if rng.random() < 0.35 + 0.5 * quality else NEGATIVE

    def organic(
        self, sim: "_Simulation", index: int, viewer: UUID, comment_id: UUID, t: float
    ) -> str:
        """The text of viewer's comment on video `index` at `t`, its truth recorded."""
        turn = self.turns.get(index)
        turned = turn is not None and t >= turn
        mood = self.mood(sim.videos[index].quality, turned, index in self.divisive)
        return self.write(sim, comment_id, mood, language_of(viewer))

    def write(self, sim: "_Simulation", comment_id: UUID, mood: str, language: str) -> str:
        text, style = _comment(self.rng, mood, language)
        sim.comment_sentiment[comment_id] = mood
        sim.comment_language[comment_id] = language
        self.styles[comment_id] = style
        return text


def sentiment_turns(sim: "_Simulation") -> None:
    """Pick the videos whose audience turns negative, and write their pile-ons.

    Run after the report waves and bot bursts (their videos tell their own stories and
    are not picked) and before organic traffic (whose comments read `turns`)."""
    rng = random.Random(f"{sim.config.seed}/sentiment-turns")
    writer = sim.comments
    low, high = TURN_AFTER_PUBLISH
    # Drip campaigns' videos may turn too: the drips are optional (bot_drips), and the
    # audience's story must not move with them (organic traffic is compared with and
    # without bots; tests/unit/test_workload_bots.py).
    drips = {b.video_id for b in sim.bursts if b.kind == "drip"}
    taken = {i for i in sim.special if sim.videos[i].id not in drips}
    pool = [
        i
        for i, v in enumerate(sim.videos)
        if i not in taken and v.published + low < sim.horizon - PILE_ON_HOURS[1] * 3600
    ]
    for _ in range(round(TURNS_PER_DAY * sim.config.days)):
        if not pool:
            break
        index = rng.choices(pool, weights=[sim.videos[i].weight for i in pool])[0]
        pool.remove(index)
        video = sim.videos[index]
        latest = min(video.published + high, sim.horizon - PILE_ON_HOURS[1] * 3600)
        start = rng.uniform(video.published + low, max(video.published + low, latest))
        writer.turns[index] = start
        sim.sentiment_turns.append(SentimentTurn(video.id, sim.at(start)))
        _pile_on(sim, rng, index, start)
    _divisive(sim, [i for i in pool if i not in writer.turns])


def _divisive(sim: "_Simulation", pool: list[int]) -> None:
    """Videos whose audience argues from the first hour on (no SentimentTurn: no turn)."""
    rng = random.Random(f"{sim.config.seed}/sentiment-divisive")
    for _ in range(round(DIVISIVE_PER_DAY * sim.config.days)):
        if not pool:
            return
        index = rng.choices(pool, weights=[sim.videos[i].weight for i in pool])[0]
        pool.remove(index)
        sim.comments.divisive.add(index)
        start = sim.videos[index].published + 1800.0
        hours = rng.uniform(*DIVISIVE_HOURS)
        for _ in range(round(DIVISIVE_COMMENTS_PER_HOUR * hours)):
            t = start + rng.uniform(0.0, hours * 3600)
            _comment_with_view(sim, rng, index, t, DIVISIVE)


def _pile_on(sim: "_Simulation", rng: random.Random, index: int, start: float) -> None:
    length = rng.uniform(*PILE_ON_HOURS) * 3600
    for _ in range(rng.randint(*PILE_ON)):
        # Most arrive early: an exponential spread, cut at the pile-on's end.
        t = start + min(length, rng.expovariate(3.0 / length))
        _comment_with_view(sim, rng, index, t, TURNED)


def _comment_with_view(
    sim: "_Simulation", rng: random.Random, index: int, t: float, weights: tuple[float, ...]
) -> None:
    """A viewer who comes to say something: a view, then a comment of a drawn mood."""
    video = sim.videos[index]
    viewer = rng.choice(sim.viewers)
    watch = round(video.duration * rng.uniform(0.3, 1.0), 2)
    sim.signal(
        t, index, redeliverable=False, kind="view", viewer_id=viewer,
        watch_seconds=watch, completed=watch >= video.duration, traffic_source="share",
        device=rng.choice(("ios", "android")),
    )  # fmt: skip
    comment_id = UUID(int=rng.getrandbits(128), version=4)
    mood = rng.choices((POSITIVE, NEGATIVE, NEUTRAL), weights=weights)[0]
    text = sim.comments.write(sim, comment_id, mood, language_of(viewer))
    later = t + rng.uniform(10.0, 90.0)
    sim.signal(
        later, index, redeliverable=False, kind="comment", viewer_id=viewer,
        comment_id=comment_id, text=text,
    )  # fmt: skip
