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
from functools import lru_cache

import pandas as pd

from personasim.core.validity import blank_text, invalid_personas, valid_personas
from personasim.personas.quality import FLAG_COLUMNS, quality_table

WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
#: The ``- Label:`` prefix of a rendered tabular persona line (left out of word clouds).
FIELD_LABEL = re.compile(r"^\s*-\s*[^:\n]{1,60}:", re.MULTILINE)
STAT_COLUMNS = [
    "person_id",
    "tier",
    "generator",
    "valid",
    "polarity",
    "subjectivity",
    "chars",
    "words",
    "unique_words",
    "type_token_ratio",
    *FLAG_COLUMNS,
]


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
    """One row per persona (person x tier x generator) with :func:`text_row` statistics and the
    degenerate-text flags of :mod:`personasim.personas.quality`; ``valid`` is False for invalid
    personas (:mod:`personasim.core.validity`) and empty texts."""
    rows = []
    valid = ~(invalid_personas(personas) | blank_text(personas["text"]))
    flags = quality_table(personas).to_dict("records")
    for r, ok, flag in zip(personas.itertuples(index=False), valid, flags, strict=True):
        text = r.text if isinstance(r.text, str) else ""
        rows.append(
            {
                "person_id": r.person_id,
                "tier": r.tier,
                "generator": r.generator,
                "valid": bool(ok),
                **text_row(text),
                **flag,
            }
        )
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def sentiment_summary(stats: pd.DataFrame) -> pd.DataFrame:
    """Per tier x generator: mean and standard deviation of polarity and subjectivity, mean
    length and vocabulary (the paper's Figure 8 as a table)."""
    stats = valid_personas(stats)
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


#: Share of texts above which a word is template, not content (with at least
#: :data:`TEMPLATE_MIN_TEXTS` texts): ``47 years`` puts "years" in every meta persona.
TEMPLATE_SHARE = 0.9
TEMPLATE_MIN_TEXTS = 10
#: A word in the value ranges of this many fields is a shared scale word, not content.
SCALE_FIELDS = 4


@lru_cache(maxsize=1)
def template_words() -> frozenset[str]:
    """Words the persona templates put into texts, whatever the person: the words of every
    field name of the persona schemas and meta attributes, the words shared by at least half of
    a field's category values ("occupations", "related", "children"...), the words of a scale
    several fields share (the Big Five's "Low", "Average", "High"...) and those of the "Not
    applicable" fallback."""
    from personasim.census.mapping import NOT_APPLICABLE
    from personasim.personas import schema
    from personasim.personas.meta import attribute_label

    found = set(words(NOT_APPLICABLE))
    ranges = {
        **schema.value_ranges(schema.objective_model()),
        **schema.value_ranges(schema.subjective_model()),
    }
    scale = Counter(w for values in ranges.values() for w in {w for v in values for w in words(v)})
    found |= {w for w, fields in scale.items() if fields >= SCALE_FIELDS}
    for field, values in ranges.items():
        found |= set(words(field.replace("_", " ").replace(".", " ")))
        found |= set(words(attribute_label(field.rsplit(".", 1)[-1])))
        shared = Counter(w for value in values for w in set(words(value)))
        found |= {w for w, n in shared.items() if n >= max(2, len(values) / 2)}
    for field in schema.field_specs():
        found |= set(words(field.replace("_", " ")))
    return frozenset(found)


def word_counts(texts: Iterable[str], extra_stopwords: Iterable[str] = ()) -> Counter[str]:
    """Word frequencies over ``texts`` without stop words and template words.

    Left out: the wordcloud package's stop words; in tabular personas (``- Label: value``
    lines) the field labels (``- Age: 35`` counts only ``35``'s words) and the
    :func:`template_words` (free prose keeps "family" or "health"); and any word found in more
    than :data:`TEMPLATE_SHARE` of the texts (when there are at least
    :data:`TEMPLATE_MIN_TEXTS`).
    """
    from wordcloud import STOPWORDS

    stop = {w.lower() for w in STOPWORDS} | {w.lower() for w in extra_stopwords}
    tabular_stop = stop | template_words()
    per_text = []
    for text in texts:
        tabular = FIELD_LABEL.search(text or "") is not None
        skip = tabular_stop if tabular else stop
        kept = words(FIELD_LABEL.sub(" ", text or "")) if tabular else words(text)
        per_text.append([w for w in kept if w not in skip and len(w) > 2])
    if len(per_text) >= TEMPLATE_MIN_TEXTS:
        shares = Counter(w for found in per_text for w in set(found))
        stop |= {w for w, n in shares.items() if n > TEMPLATE_SHARE * len(per_text)}
    return Counter(w for found in per_text for w in found if w not in stop)


def word_cloud_png(
    texts: Iterable[str], max_words: int = 80, width: int = 520, height: int = 300, seed: int = 0
) -> bytes | None:
    """A word cloud of ``texts`` as PNG bytes (None when there are no words)."""
    from wordcloud import WordCloud

    counts = word_counts(texts)
    if not counts:
        return None
    cloud = WordCloud(
        width=width,
        height=height,
        background_color="white",
        max_words=max_words,
        random_state=seed,
        colormap="Dark2",
    )
    image = cloud.generate_from_frequencies(dict(counts)).to_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
