"""Text diagnostics of persona texts: TextBlob sentiment, length and vocabulary, word clouds.

Only the offline parts of TextBlob are used (``TextBlob(text).sentiment``, the pattern lexicon
shipped in the wheel); no corpus is downloaded. Word clouds use the ``wordcloud`` package's
bundled font.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterable

import pandas as pd

WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
#: The ``- Label:`` prefix of a rendered tabular persona line (left out of word clouds).
FIELD_LABEL = re.compile(r"^\s*-\s*[^:\n]{1,60}:", re.MULTILINE)
STAT_COLUMNS = [
    "person_id", "tier", "generator", "valid", "polarity", "subjectivity", "chars", "words",
    "unique_words", "type_token_ratio",
]  # fmt: skip


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters, apostrophes and hyphens)."""
    return [w.lower() for w in WORD.findall(text or "")]


def text_row(text: str) -> dict[str, float]:
    """Sentiment, length and vocabulary statistics of one text."""
    from textblob import TextBlob

    sentiment = TextBlob(text or "").sentiment
    tokens = words(text)
    unique = len(set(tokens))
    return {
        "polarity": float(sentiment.polarity),
        "subjectivity": float(sentiment.subjectivity),
        "chars": len(text or ""),
        "words": len(tokens),
        "unique_words": unique,
        "type_token_ratio": unique / len(tokens) if tokens else float("nan"),
    }


def text_stats(personas: pd.DataFrame) -> pd.DataFrame:
    """One row per persona (person x tier x generator) with :func:`text_row` statistics;
    ``valid`` is False for invalid replies and empty texts."""
    rows = []
    for r in personas.itertuples(index=False):
        text = r.text if isinstance(r.text, str) else ""
        valid = bool(getattr(r, "valid", True)) and bool(text.strip())
        rows.append({"person_id": r.person_id, "tier": r.tier, "generator": r.generator,
                     "valid": valid, **text_row(text)})  # fmt: skip
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def sentiment_summary(stats: pd.DataFrame) -> pd.DataFrame:
    """Per tier x generator: mean and standard deviation of polarity and subjectivity, mean
    length and vocabulary (the paper's Figure 8 as a table)."""
    if "valid" in stats.columns:
        stats = stats[stats["valid"].astype(bool)]
    grouped = stats.groupby(["tier", "generator"], sort=False)
    return grouped.agg(
        personas=("person_id", "size"),
        polarity=("polarity", "mean"),
        polarity_sd=("polarity", "std"),
        subjectivity=("subjectivity", "mean"),
        subjectivity_sd=("subjectivity", "std"),
        words=("words", "mean"),
        unique_words=("unique_words", "mean"),
        type_token_ratio=("type_token_ratio", "mean"),
    ).reset_index()


def word_counts(texts: Iterable[str], extra_stopwords: Iterable[str] = ()) -> Counter[str]:
    """Word frequencies over ``texts`` without the wordcloud package's stop words and without
    the field labels of tabular personas (``- Age: 35`` counts only ``35``'s words)."""
    from wordcloud import STOPWORDS

    stop = {w.lower() for w in STOPWORDS} | {w.lower() for w in extra_stopwords}
    values = (FIELD_LABEL.sub(" ", t) for t in texts)
    return Counter(w for t in values for w in words(t) if w not in stop and len(w) > 2)


def word_cloud_png(texts: Iterable[str], max_words: int = 80, width: int = 520,
                   height: int = 300, seed: int = 0) -> bytes | None:  # fmt: skip
    """A word cloud of ``texts`` as PNG bytes (None when there are no words)."""
    from wordcloud import WordCloud

    counts = word_counts(texts)
    if not counts:
        return None
    cloud = WordCloud(width=width, height=height, background_color="white", max_words=max_words,
                      random_state=seed, colormap="Dark2")  # fmt: skip
    image = cloud.generate_from_frequencies(dict(counts)).to_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
