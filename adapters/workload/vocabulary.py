"""What the simulated people write and use: vocabularies and weighted picks."""

import bisect
import itertools
import random
from collections.abc import Iterator

from adapters.workload import comment_text
from domain.moderation import REPORT_REASONS

# -- vocabulary: what the simulated people write and use ---------------------------------
REASONS = tuple(sorted(REPORT_REASONS))  # the domain's list, in a stable order
WAVE_REASONS = ("violence", "hate", "harassment", "misinformation", "nudity", "spam")
APPEALS = (
    "This is satire, not misinformation.",
    "The clip is from a licensed film; I have the rights.",
    "Educational content about safety, please review again.",
    "My video was mass-reported by a rival account.",
)
# (like, share, comment, follow) probabilities per view stage: skip, partial, completed.
ENGAGEMENT_RATES = (
    (0.002, 0.0005, 0.0005, 0.0002),
    (0.03, 0.004, 0.004, 0.002),
    (0.15, 0.025, 0.025, 0.01),
)
_REGIONS = ("US", "BR", "ID", "MX", "GB", "DE", "FR", "JP", "PH", "VN", "TR", "NG", "EG", "KR")
_REGION_CUM = tuple(itertools.accumulate((22, 12, 11, 8, 6, 5, 5, 4, 6, 5, 4, 4, 4, 4)))
_SOURCES = ("for_you", "search", "profile", "share", "other")
_SOURCE_CUM = tuple(itertools.accumulate((78, 7, 6, 5, 4)))
_DEVICES = ("ios", "android", "web", "tv")
_DEVICE_CUM = tuple(itertools.accumulate((45, 45, 8, 2)))
_CHANNELS = ("copy_link", "whatsapp", "instagram", "messenger", "sms", "email", "x", "other")
_CHANNEL_CUM = tuple(itertools.accumulate((30, 25, 15, 10, 5, 3, 7, 5)))
_WORDS = (
    "sunny",
    "pixel",
    "neon",
    "lofi",
    "chef",
    "dance",
    "vibe",
    "retro",
    "cosmic",
    "urban",
    "wild",
    "mellow",
    "turbo",
    "cozy",
    "glitch",
    "ocean",
    "velvet",
    "echo",
    "maple",
    "nova",
)
_TAGS = (
    "fyp",
    "foryou",
    "viral",
    "dance",
    "comedy",
    "cooking",
    "fitness",
    "pets",
    "travel",
    "diy",
    "beauty",
    "gaming",
    "music",
    "fashion",
    "learnontiktok",
    "booktok",
    "asmr",
    "football",
    "skincare",
    "lifehack",
    "challenge",
    "duet",
    "storytime",
    "art",
    "cars",
)
_TAG_CUM = tuple(itertools.accumulate(1 / rank for rank in range(1, len(_TAGS) + 1)))
_CAPTIONS = (
    "wait for it",
    "pov: monday morning",
    "tried this so you don't have to",
    "day {n} of posting until it blows up",
    "rate this 1-10",
    "part {n}",
    "the ending though",
    "nobody talks about this",
    "quick recipe",
    "new trend alert",
)


def _pick(rng: random.Random, items: tuple[str, ...], cum: tuple[float, ...]) -> str:
    return items[bisect.bisect(cum, rng.random() * cum[-1])]


def _handle(rng: random.Random, index: int, seed: int | str = "") -> tuple[str, str]:
    """A handle unique per creator index and seed (handles are unique in a store: two
    seeds loaded into one store must not collide), at most 24 characters: the index and
    seed are kept whole, the words shortened to fit."""
    first, second = rng.choice(_WORDS), rng.choice(_WORDS)
    tail = f"{index}_{abs(int(seed))}" if seed != "" else str(index)
    return f"{first}.{second}"[: 24 - len(tail)] + tail, f"{first.title()} {second.title()}"


def _region(rng: random.Random) -> str:
    return _pick(rng, _REGIONS, _REGION_CUM)


def _duration(rng: random.Random) -> float:
    """Mostly short clips, some minute-long ones, a few long-form (3 s to 600 s)."""
    u = rng.random()
    low, high = (5, 30) if u < 0.6 else (30, 90) if u < 0.9 else (90, 600)
    return round(rng.uniform(low, high), 1)


def _caption(rng: random.Random) -> tuple[str, list[str]]:
    tags = list(dict.fromkeys(rng.choices(_TAGS, cum_weights=_TAG_CUM, k=rng.randint(1, 5))))
    text = rng.choice(_CAPTIONS).format(n=rng.randint(1, 30))
    return f"{text} " + " ".join(f"#{t}" for t in tags), tags


def _sound(rng: random.Random) -> str | None:
    if rng.random() < 0.15:
        return None  # original sound
    return f"snd-{int(rng.paretovariate(1.0)) % 5000:04d}"  # a few sounds are everywhere


def _traffic_source(rng: random.Random) -> str:
    return _pick(rng, _SOURCES, _SOURCE_CUM)


def _device(rng: random.Random) -> str:
    return _pick(rng, _DEVICES, _DEVICE_CUM)


def _channel(rng: random.Random) -> str:
    return _pick(rng, _CHANNELS, _CHANNEL_CUM)


def _comment(rng: random.Random, mood: str, language: str = "en") -> tuple[str, str]:
    """A comment of this mood ("positive" | "negative" | "neutral") in this language, and
    its style ("plain", "slang", "emoji"...): see comment_text.py."""
    return comment_text.write(rng, mood, language)


def _cumulative(weights: Iterator[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out
