"""What simulated viewers write under a video, by mood and language.

A comment's mood (positive, negative, neutral) is decided by the caller (the sentiment
phase: the video's quality, a sentiment turn); this module only writes it the way
people do, so that the mood is the truth a sentiment scorer is measured against. The
styles are the ones that make comment sentiment hard: plain statements, intensifiers
("SO good!!!"), negation ("not bad at all", "not worth it"), emoji alone, platform slang
("lowkey fire", "mid"), and mixed comments whose last clause carries the meaning ("the
edit is nice but the advice is just wrong": negative, as a reader takes it). Neutral
comments are questions and remarks ("song name?"). Spanish and Portuguese comments come
from the viewers who write in those languages.

The phrases were written as comments read, not taken from a sentiment lexicon: many
carry no lexicon word at all (slang, emoji), and some use a lexicon word against its
usual polarity ("this is so funny 😭", "no thanks").
"""

import random

POSITIVE, NEGATIVE, NEUTRAL = "positive", "negative", "neutral"
MOODS = (POSITIVE, NEGATIVE, NEUTRAL)
LANGUAGES = ("en", "es", "pt")

# -- English -----------------------------------------------------------------------------
_EN_POSITIVE_PLAIN = (
    "love this",
    "this made my day",
    "amazing work",
    "this is so good",
    "best thing I've seen today",
    "thank you for this",
    "you're so talented",
    "beautiful shot",
    "this is hilarious",
    "perfect",
    "I laughed way too hard",
    "great tips, thank you",
    "that transition was clean",
    "so wholesome, love it",
    "this deserves way more views",
    "you always make me smile",
    "wow the colours",
    "brilliant idea",
    "the best creator on here",
    "such a cute dog",
    "tried it and it worked, thanks",
    "love the energy",
    "this is art",
    "happy to see you post again",
    "great video as always",
    "the recipe was delicious",
    "you deserve all the success",
    "so fun to watch",
    "this is genuinely helpful",
    "what a great idea",
)
_EN_NEGATIVE_PLAIN = (
    "this is so boring",
    "worst video I've seen all week",
    "terrible advice",
    "what a waste of time",
    "this hurt to watch",
    "stop posting this garbage",
    "so annoying",
    "fake and staged",
    "the audio is horrible",
    "this is just sad",
    "dislike",
    "sad to see you sell out like this",
    "awful, just awful",
    "this is dangerous, don't try it",
    "so disappointed in you",
    "ugly edit",
    "the worst",
    "this is stupid",
    "you should be ashamed",
    "I hate this trend",
    "scam, don't buy it",
    "painful to watch",
    "this is wrong on so many levels",
    "the food looks disgusting",
    "lost all respect",
    "this is offensive",
    "boring and way too long",
    "so fake it hurts",
    "honestly the worst take",
    "this ruined my day",
)
_EN_INTENSIFIERS = ("so", "really", "absolutely", "super", "extremely", "SO", "incredibly")
_EN_POSITIVE_ADJ = (
    "good",
    "funny",
    "beautiful",
    "helpful",
    "cute",
    "talented",
    "satisfying",
    "impressive",
)
_EN_NEGATIVE_ADJ = ("bad", "boring", "annoying", "cringe", "fake", "awful", "painful", "lazy")
_EN_POSITIVE_NEGATED = (
    "not bad at all",
    "honestly not bad",
    "can't complain",
    "never disappoints",
    "not gonna lie, this is good",
    "wasn't expecting to like this but I do",
    "no notes",
    "can't stop watching",
    "not terrible, actually pretty fun",
    "I didn't hate it, it was great",
)
_EN_NEGATIVE_NEGATED = (
    "not good",
    "not funny at all",
    "didn't like it",
    "not worth watching",
    "this is not good",
    "not my favorite",
    "no thanks",
    "this isn't it",
    "not even close to your old stuff",
    "nothing special",
    "I don't get the hype",
    "not impressed",
)
_EN_POSITIVE_EMOJI = ("😍😍", "❤️❤️❤️", "😂😂😂", "👏👏👏", "🥰", "🔥🔥🔥", "😂😂 dead", "🙌")
_EN_NEGATIVE_EMOJI = ("👎", "🤮", "😴😴", "🙄", "😡", "🤡🤡", "😒")
_EN_POSITIVE_SLANG = (
    "lowkey fire ngl",
    "this slaps",
    "ate and left no crumbs",
    "goated",
    "W video",
    "no cap this is it",
    "this is so funny 😭",
    "I'm crying 😭😭",
    "the way I screamed",
    "chef's kiss",
    "iconic",
    "10/10",
)
_EN_NEGATIVE_SLANG = (
    "mid",
    "L take",
    "ratio",
    "bro fell off",
    "this ain't it",
    "giving nothing",
    "flop",
    "who asked",
    "yikes",
    "0/10",
    "hard pass",
    "I want my 30 seconds back",
)
_EN_POSITIVE_PART = ("the edit is nice", "love the song", "great idea", "you're funny")
_EN_NEGATIVE_PART = ("the advice is just wrong", "the audio is awful", "way too long",
                     "the ending ruined it")  # fmt: skip
_EN_NEUTRAL = (
    "song name?",
    "what app is this",
    "part 2?",
    "where is this",
    "first",
    "who's here after the update",
    "what camera do you use",
    "tutorial?",
    "recipe?",
    "watching this at 3am",
    "came here from the other video",
    "what's the brand of that jacket",
    "day 12 of asking for the link",
    "how long did this take",
    "is this real",
    "which city is this",
    "link?",
    "@maria look",
    "what's the name of the filter",
    "the cat in the back lol",
    "part 2 please",
    "haha my mom does this",
    "no way this is real",
    "wait for the end",
)
_EN_POSITIVE_TAIL = ("", "", "", "!!", " 😂", " fr", " ❤️")
_EN_NEGATIVE_TAIL = ("", "", "", " tbh", " smh", " 🙄", "...")

# -- Spanish and Portuguese (counted; VADER does not score them) -------------------------
_ES = {
    POSITIVE: ("me encanta", "qué bonito", "buenísimo", "jajaja me muero", "lo mejor que he "
               "visto hoy", "qué talento", "gracias por la receta", "te quedó increíble"),
    NEGATIVE: ("qué aburrido", "no me gustó nada", "pésimo", "qué asco de video", "una "
               "pérdida de tiempo", "esto da vergüenza", "malísimo", "no sirve para nada"),
    NEUTRAL: ("¿cómo se llama la canción?", "¿dónde es esto?", "parte 2", "primero",
              "¿qué app usaste?", "¿de dónde es la chaqueta?"),
}  # fmt: skip
_PT = {
    POSITIVE: ("amei demais", "que lindo", "muito bom", "kkkkk morri", "perfeito",
               "que talento", "melhor vídeo do dia"),
    NEGATIVE: ("que chato", "não gostei", "horrível", "que vergonha", "perda de tempo",
               "muito ruim"),
    NEUTRAL: ("qual é a música?", "onde é isso?", "parte 2", "primeiro", "qual app?"),
}  # fmt: skip

# Style shares per mood (English): most comments are plain; the hard styles are a minority.
STYLES = {
    POSITIVE: (("plain", 62), ("intensified", 14), ("negated", 6), ("emoji", 7),
               ("slang", 5), ("mixed", 6)),
    NEGATIVE: (("plain", 62), ("intensified", 12), ("negated", 8), ("emoji", 5),
               ("slang", 5), ("mixed", 8)),
    NEUTRAL: (("plain", 100),),
}  # fmt: skip


def write(rng: random.Random, mood: str, language: str = "en") -> tuple[str, str]:
    """A comment with this mood in this language, and its style (for diagnostics)."""
    if language != "en":
        table = _ES if language == "es" else _PT
        return rng.choice(table[mood]), "other_language"
    styles = STYLES[mood]
    style = rng.choices([s for s, _ in styles], weights=[w for _, w in styles])[0]
    return _english(rng, mood, style), style


def _english(rng: random.Random, mood: str, style: str) -> str:
    positive = mood == POSITIVE
    if mood == NEUTRAL:
        return rng.choice(_EN_NEUTRAL)
    if style == "plain":
        text = rng.choice(_EN_POSITIVE_PLAIN if positive else _EN_NEGATIVE_PLAIN)
        return text + rng.choice(_EN_POSITIVE_TAIL if positive else _EN_NEGATIVE_TAIL)
    if style == "intensified":
        adjective = rng.choice(_EN_POSITIVE_ADJ if positive else _EN_NEGATIVE_ADJ)
        text = f"{rng.choice(_EN_INTENSIFIERS)} {adjective}"
        return text + rng.choice(("!!!", "", " omg", "!!")) if positive else text
    if style == "negated":
        return rng.choice(_EN_POSITIVE_NEGATED if positive else _EN_NEGATIVE_NEGATED)
    if style == "emoji":
        return rng.choice(_EN_POSITIVE_EMOJI if positive else _EN_NEGATIVE_EMOJI)
    if style == "slang":
        return rng.choice(_EN_POSITIVE_SLANG if positive else _EN_NEGATIVE_SLANG)
    # mixed: the clause after "but" is what the commenter means
    first, last = (_EN_NEGATIVE_PART, _EN_POSITIVE_PART) if positive else (
        _EN_POSITIVE_PART, _EN_NEGATIVE_PART)  # fmt: skip
    return f"{rng.choice(first)} but {rng.choice(last)}"
