"""The comment moderation phase: toxic comments, hard negatives, reports and decisions.

Runs after organic traffic and draws only from its own generator
(`random.Random(f"{seed}/comment_moderation")`), so no other phase's draws move. What it
models, and why:

- toxic comments (what a moderator removes): second-person insults and harassment,
  threats, spam links and scams, from a small pool of repeat accounts (trolls and
  spammers), in varied wording; a share is obfuscated (leetspeak, spacing, asterisks,
  stretched letters, "dot com" links) as real evaders write;
- hard negatives: benign comments that are negative or crude ("I hate how catchy this
  is", "my idiot brother did this too", "this trend is trash"), by ordinary viewers:
  the words a blocklist looks for, without a target. A keyword rule flags them; a model
  has to learn who is addressed and how;
- viewers report some comments: most toxic ones (not all: many are never reported),
  some hard negatives and a few organic comments, minutes to hours later;
- moderators decide every reported comment hours after its first report: remove toxic,
  keep benign, with a little noise (a tired moderator gets ~5 % wrong).

Truth: `sim.toxic_comments` (what a moderator would remove) and `sim.comment_sentiment`
for the comments written here (insults, threats and hard negatives are "negative";
spam and scams, which read upbeat, are "neutral").
"""

import random
from typing import TYPE_CHECKING, Any
from uuid import UUID

from adapters.workload.model import DecideComment, ReportComment
from domain.comment_moderation import CommentCase

if TYPE_CHECKING:
    from adapters.workload.generator import _Simulation

# Per simulated day at the default 5,000 views a day (scaled with views_per_day).
TOXIC_PER_DAY = 36.0
MIN_VIEWS_PER_DAY = 2_500
HARD_NEGATIVES_PER_DAY = 48.0
TOXIC_KINDS = (("insult", 0.45), ("threat", 0.1), ("spam", 0.3), ("scam", 0.15))
OBFUSCATED_SHARE = 0.3
REPORTED_SHARE = {"toxic": 0.55, "hard_negative": 0.15, "organic": 0.01}
EXTRA_REPORTERS = 0.35  # chance of each further reporter on a reported comment
REPORT_DELAY = (300.0, 6 * 3600.0)
DECISION_DELAY = (3600.0, 10 * 3600.0)
MODERATOR_ERROR = 0.05
REPEAT_ACCOUNTS = 0.01  # share of viewers who write the toxic comments

_INSULT_ADJ = ("pathetic", "worthless", "stupid", "ugly", "dumb", "disgusting", "braindead",
               "clueless", "talentless", "fat", "annoying", "useless", "cringe")  # fmt: skip
_INSULT_NOUN = ("loser", "idiot", "clown", "moron", "freak", "joke", "waste of space",
                "failure", "creep", "trash", "nobody", "fraud")  # fmt: skip
_YOU = ("you", "u", "you", "ur", "your")
_INSULTS = (
    "{you} are such a {adj} {noun}",
    "ur a {adj} {noun} and everyone knows it",
    "nobody likes you, {noun}",
    "delete your account {noun}",
    "stop posting you {adj} {noun}",
    "imagine being this {adj} lol",
    "no one asked, {noun}",
    "you look like a {adj} {noun}",
    "{you} should quit, {adj} {noun}",
    "log off forever you {noun}",
    "your face is {adj}, just stop",
    "how are you this {adj}? {noun}",
    "get off the internet {noun}",
    "your mom must be ashamed of you {noun}",
    "lmao {adj} {noun} thinks this is content",
    "{noun}. {adj} {noun}",
    "you are the reason this app is dying, {noun}",
    "cry about it {noun}",
)
_THREATS = (
    "i know where you live {noun}",
    "watch your back, {noun}",
    "someone should shut you up for good",
    "you better stop posting or else",
    "i will find you {noun}",
    "keep talking and see what happens to you",
    "people like you deserve to get hurt",
)
_BAIT = ("free followers", "free coins", "a free gift card", "1000 likes", "free robux",
         "a free iphone", "verified badge")  # fmt: skip
_DOMAINS = ("gr4bfree", "likez-boost", "promo-win", "fastfans", "giftdrop", "topfollow")
_SPAM = (
    "get {bait} at {url}",
    "check my profile for {bait} 👉 {url}",
    "follow me and i follow back!! {url}",
    "{bait} here -> {url}",
    "sub to my channel {url} 🔥🔥",
    "omg {bait} still working {url}",
    "want {bait}? visit {url}",
    "promo code in bio, {bait} {url}",
)
_SCAMS = (
    "i made $3000 this week from home, dm me",
    "congrats you won {bait}, claim it at {url}",
    "send 0.1 btc and get 1 btc back {url}",
    "investment tip: dm me on telegram for 10x returns",
    "you have been selected for {bait}! {url}",
    "earn $500 a day with this app {url}",
    "hot singles near you {url}",
)
_HARD_NEGATIVES = (
    "i hate how catchy this is",
    "this song is so annoying ngl",
    "worst trend ever, sorry",
    "my idiot brother did this too 😂",
    "this is stupid but i laughed",
    "dumbest thing i've seen today lmao",
    "not gonna lie this trend is trash",
    "ugh this made me so sad",
    "the ending killed me 😂",
    "i'd kill for that outfit",
    "that fall looked painful, hope you're ok",
    "the audio is trash, fix your mic",
    "you did this trend wrong lol",
    "ugly lighting but the dance is fire",
    "i hate mondays so much",
    "who else is sick of this sound",
    "this recipe looks disgusting tbh",
    "clickbait, the follow-up never came",
    "stupid question but what song is this",
    "my dumb cat would never",
    "terrible camera angle, great moves though",
    "this app keeps crashing, so annoying",
    "i'm such a loser, i watched this 10 times",
    "that referee was a clown honestly",
    "free advice: use a tripod",
    "boring, the last one was better",
    "this is so cringe i love it",
    "you look tired, get some sleep",
    "worst pain ever, i feel you",
    "that guy in the back is a total idiot lol",
)
_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "$"}


def comment_moderation(sim: "_Simulation") -> None:
    """Write toxic comments and hard negatives, then reports and decisions (see module)."""
    rng = random.Random(f"{sim.config.seed}/comment_moderation")
    cfg = sim.config
    # At least the volume of 2,500 views a day: smaller workloads (tests) would give the
    # model too few decisions to learn from.
    scale = max(cfg.views_per_day, MIN_VIEWS_PER_DAY) / 5_000 * cfg.days
    repeaters = rng.sample(sim.viewers, max(2, int(len(sim.viewers) * REPEAT_ACCOUNTS)))
    moderators = [UUID(int=rng.getrandbits(128), version=4) for _ in range(6)]
    videos = sorted(range(len(sim.videos)), key=lambda i: sim.videos[i].published)
    written: list[tuple[float, int, UUID, str]] = []  # (t, video, comment, kind)
    plan = [("toxic", _count(rng, TOXIC_PER_DAY * scale)),
            ("hard_negative", _count(rng, HARD_NEGATIVES_PER_DAY * scale))]  # fmt: skip
    for group, count in plan:
        for _ in range(count):
            t = rng.uniform(0.0, sim.horizon - 600.0)
            video = _video_at(sim, rng, videos, t)
            if video is None or not sim.available(video, t):
                continue
            if group == "toxic":
                kind = _pick(rng, TOXIC_KINDS)
                author = rng.choice(repeaters)  # a few accounts write most of it
                text = _toxic(rng, kind)
            else:
                kind, author = group, rng.choice(sim.viewers)
                text = rng.choice(_HARD_NEGATIVES)
            comment_id = UUID(int=rng.getrandbits(128), version=4)
            sim.signal(t, video, redeliverable=False, kind="comment", viewer_id=author,
                       comment_id=comment_id, text=text)  # fmt: skip
            written.append((t, video, comment_id, kind))
            if group == "toxic":
                sim.toxic_comments.add(comment_id)
            sim.comment_sentiment[comment_id] = (
                "neutral" if kind in ("spam", "scam") else "negative"
            )
    written += [(t, v, c, "organic") for t, v, c in _organic_comments(sim, {w[2] for w in written})]
    for t, video, comment_id, kind in written:
        share = REPORTED_SHARE["toxic" if kind in dict(TOXIC_KINDS) else kind]
        if rng.random() < share:
            _report_and_decide(sim, rng, moderators, t, video, comment_id, kind)


def _report_and_decide(
    sim: "_Simulation", rng: random.Random, moderators: list[UUID],
    t: float, video: int, comment_id: UUID, kind: str,
) -> None:  # fmt: skip
    toxic = comment_id in sim.toxic_comments
    first = t + rng.uniform(*REPORT_DELAY)
    reporters, when = 1, first
    while rng.random() < EXTRA_REPORTERS and reporters < 6:
        reporters += 1
    for n in range(reporters):
        if when >= sim.horizon:
            break
        reason = _reason(rng, kind)
        sim.emit(when, ReportComment, comment_id=comment_id, video_id=sim.videos[video].id,
                 reporter_id=rng.choice(sim.viewers), reason=reason)  # fmt: skip
        when += rng.uniform(60.0, 3600.0) * (n + 1)
    decided = first + rng.uniform(*DECISION_DELAY)
    if decided >= sim.horizon:
        return
    remove = toxic if rng.random() >= MODERATOR_ERROR else not toxic
    sim.emit(decided, DecideComment, case_id=CommentCase.create_id(comment_id),
             comment_id=comment_id, moderator_id=rng.choice(moderators),
             outcome="remove" if remove else "keep",
             note="community-guidelines/comments" if remove else "no violation found")  # fmt: skip


def _reason(rng: random.Random, kind: str) -> str:
    match kind:
        case "insult":
            return rng.choice(("harassment", "harassment", "hate", "other"))
        case "threat":
            return rng.choice(("violence", "harassment"))
        case "spam" | "scam":
            return rng.choice(("spam", "scam", "spam"))
    return rng.choice(("harassment", "other", "other", "spam", "hate"))


def _toxic(rng: random.Random, kind: str) -> str:
    fill: dict[str, Any] = {
        "you": rng.choice(_YOU),
        "adj": rng.choice(_INSULT_ADJ),
        "noun": rng.choice(_INSULT_NOUN),
        "bait": rng.choice(_BAIT),
        "url": _url(rng),
    }
    template = rng.choice({"insult": _INSULTS, "threat": _THREATS, "spam": _SPAM,
                           "scam": _SCAMS}[kind])  # fmt: skip
    if rng.random() < OBFUSCATED_SHARE:
        for key in ("adj", "noun", "bait"):
            fill[key] = _obfuscate(rng, fill[key])
    text = template.format(**fill)
    if rng.random() < 0.2:
        text = (
            text.upper() if rng.random() < 0.5 else text + rng.choice((" 🤡", " 💀", "!!!", " lol"))
        )
    return text


def _url(rng: random.Random) -> str:
    domain, path = rng.choice(_DOMAINS), f"{rng.getrandbits(24):x}"
    return rng.choice((
        f"https://{domain}.com/{path}", f"www.{domain}.net", f"{domain} dot com",
        f"bit.ly/{path}", f"{domain}[.]xyz/{path}",
    ))  # fmt: skip


def _obfuscate(rng: random.Random, word: str) -> str:
    """How evaders disguise a word from filters: leetspeak, spacing, a star, stretching."""
    style = rng.randrange(4)
    if style == 0:
        return "".join(_LEET.get(ch, ch) if rng.random() < 0.6 else ch for ch in word)
    if style == 1:
        return " ".join(word) if len(word) <= 7 else word.replace("e", "3")
    if style == 2 and len(word) > 3:
        i = rng.randrange(1, len(word) - 1)
        return word[:i] + "*" + word[i + 1 :]
    i = rng.randrange(len(word))
    return word[: i + 1] + word[i] * rng.randint(2, 4) + word[i + 1 :]


def _video_at(sim: "_Simulation", rng: random.Random, order: list[int], t: float) -> int | None:
    """A published video at t, drawn by popularity (the videos people watch get comments)."""
    published = [i for i in order if sim.videos[i].published < t]
    if not published:
        return None
    return rng.choices(published, weights=[sim.videos[i].weight for i in published])[0]


def _organic_comments(sim: "_Simulation", ours: set[UUID]) -> list[tuple[float, int, UUID]]:
    """Comments the other phases wrote (time, video, comment id), which viewers may report."""
    index = {v.id: i for i, v in enumerate(sim.videos)}
    first: dict[UUID, tuple[float, int, UUID]] = {}  # a redelivered comment counts once
    for t, _seq, _cls, kw in sim.items:
        if kw.get("kind") != "comment" or kw["comment_id"] in ours:
            continue
        video = index.get(kw["video_id"])
        if video is not None and kw["comment_id"] not in first:
            first[kw["comment_id"]] = (t, video, kw["comment_id"])
    return sorted(first.values(), key=lambda item: (item[0], str(item[2])))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    names, weights = zip(*weighted, strict=True)
    return rng.choices(names, weights=weights)[0]


def _count(rng: random.Random, mean: float) -> int:
    """A Poisson-like count (normal approximation: the means here are large)."""
    return max(0, round(rng.gauss(mean, mean**0.5)))
