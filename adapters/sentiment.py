"""The comment scorer SentimentProjection uses: VADER, after an offline language check.

VADER (vaderSentiment) is a lexicon and rule model for social-media English: negation,
intensifiers, capitals, "but", emoticons and emoji. Its lexicon ships in the package:
nothing is downloaded. It supports English only, so the comment's language is detected
first with py3langid (langid.py's model, shipped in its package, offline), limited to
the languages of the platform's markets (LANGUAGES): a comment is scored when English is
the likeliest, or when another language is likeliest at below `min_other` probability
(short English comments, "song name?", often look like something else; a false
"foreign" costs a scored comment, a false "English" a wrong neutral). A comment with
fewer than three letters (emoji, "10/10") is "und" (undetermined) and scored: VADER
reads emoji by their names. Other languages are counted, not scored.

Both models are loaded once per process (the language model takes about a second).
"""

import threading
from typing import Any

from projections.sentiment import CommentScore

# The platform's market languages (the regions creators register from): detection picks
# among these only, which makes it far more reliable on short texts.
LANGUAGES = ("en", "es", "pt", "fr", "de", "id", "ja", "tl", "vi", "tr", "ar", "ko")
MIN_LETTERS = 3
_VARIATION_SELECTOR = "\ufe0f"  # "❤️" is "❤" + U+FE0F; VADER's emoji table has the bare one


_models: dict[tuple[str, ...], tuple[Any, Any]] = {}  # languages -> (py3langid, VADER)
_models_lock = threading.Lock()


def _load_models(languages: tuple[str, ...]) -> tuple[Any, Any]:
    """The models, loaded once per process (and per language set)."""
    with _models_lock:
        if languages not in _models:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            langid = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            langid.set_languages(list(languages))
            _models[languages] = (langid, SentimentIntensityAnalyzer())
        return _models[languages]


def load_models(languages: tuple[str, ...] = LANGUAGES) -> None:
    """Load the models now (they load in the background otherwise): for a process that
    counts its setup apart from its work, as the rebuild benchmark does (about 0.55 s of
    CPU, most of it decompressing py3langid's model)."""
    _load_models(languages)


class VaderScorer:
    """CommentScorer: py3langid for the language, VADER's compound for English.

    Constructing one loads nothing: every process that builds the projection specs
    builds one, and most never score a comment (a core rebuild, a Kafka worker, the CLI).
    The models load in a background thread from `prepare()` on, which the projection
    calls when its runner starts it (about 0.55 s of CPU, once per process), so that the
    first comment does not stall every projection sharing the runner's thread; the first
    score waits for them if they are not there yet (and loads them itself if nobody
    called `prepare()`)."""

    def __init__(self, *, min_other: float = 0.4, languages: tuple[str, ...] = LANGUAGES) -> None:
        self.min_other = min_other
        self.languages = languages
        self._langid: Any = None
        self._vader: Any = None
        self._preparing = False

    def prepare(self) -> None:
        if not self._preparing and self._vader is None:
            self._preparing = True
            threading.Thread(target=_load_models, args=(self.languages,), daemon=True).start()

    def _load(self) -> None:
        self._langid, self._vader = _load_models(self.languages)

    def language(self, text: str) -> str:
        if self._vader is None:
            self._load()
        if sum(c.isalpha() for c in text) < MIN_LETTERS:
            return "und"
        found, probability = self._langid.classify(text.lower())
        return found if found != "en" and probability >= self.min_other else "en"

    def score(self, text: str) -> CommentScore:
        language = self.language(text)
        if language not in ("en", "und"):
            return CommentScore(language, None)
        clean = text.replace(_VARIATION_SELECTOR, "")
        return CommentScore(language, float(self._vader.polarity_scores(clean)["compound"]))
