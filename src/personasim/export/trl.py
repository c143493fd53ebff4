"""Export preference pairs: TRL's conversational preference format and a Hugging Face dataset
folder.

TRL (``DPOTrainer`` and friends) reads preference rows with three columns, in the conversational
form: ``prompt`` (a list of ``{"role", "content"}`` messages), ``chosen`` and ``rejected`` (each
a one-message assistant list). The persona is a system message of ``prompt``
(``persona_in_prompt="system"``: personalized training) or left out (``"none"``: preference
elicitation, where the model must learn the user's preferences from elsewhere). Rows keep
``person_id``, ``prompt_id``, ``split``, ``persona_split``, ``topic``, the judge's ``p_chosen``
and ``verified``, the profile text ``persona``, its attributes ``persona_fields`` (a JSON object
as text: personas differ in their open categories, so no fixed struct fits) and the persona's
``critique`` beside the three columns (``persona_fields`` is empty for pairs made before it
existed).

The Hugging Face folder holds ``data/<split>-0000i-of-0000N.parquet`` shards and a ``README.md``
dataset card (YAML header with features, splits and data files; then how it was made, counts,
models, verification figures and the license note).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from personasim.core.errors import ConfigError, DataError
from personasim.core.tables import atomic_path, write_text_atomic
from personasim.testbed.common import persona_system
from personasim.testbed.pairs import pair_stats

PersonaInPrompt = Literal["system", "none"]
TRL_COLUMNS = ("prompt", "chosen", "rejected")
EXTRA_COLUMNS = (
    "person_id",
    "prompt_id",
    "split",
    "persona_split",
    "topic",
    "p_chosen",
    "verified",
    "persona",
    "persona_fields",
    "critique",
)
SPLIT_ORDER = ("train", "test", "held_out")

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
SCHEMA = pa.schema(
    [
        ("prompt", _MESSAGES),
        ("chosen", _MESSAGES),
        ("rejected", _MESSAGES),
        ("person_id", pa.string()),
        ("prompt_id", pa.string()),
        ("split", pa.string()),
        ("persona_split", pa.string()),
        ("topic", pa.string()),
        ("p_chosen", pa.float64()),
        ("verified", pa.bool_()),
        ("persona", pa.string()),
        ("persona_fields", pa.string()),
        ("critique", pa.string()),
    ]
)


def trl_rows(
    pairs: pd.DataFrame,
    persona_in_prompt: PersonaInPrompt = "system",
    include_unverified: bool = False,
    drop_flawed: bool = True,
) -> list[dict[str, Any]]:
    """One TRL conversational preference row per pair that
    :func:`personasim.testbed.export_filter.select_pairs` keeps (verified, whole, no leak)."""
    from personasim.testbed.export_filter import select_pairs

    if persona_in_prompt not in ("system", "none"):
        raise ConfigError(f"persona_in_prompt {persona_in_prompt!r} is not system or none")
    kept = select_pairs(pairs, include_unverified, drop_flawed).kept
    empty = int(kept[["prompt", "chosen", "rejected"]].isna().any(axis=1).sum())
    if empty:
        raise DataError(
            f"{empty} pair(s) to export have no prompt, chosen or rejected text",
            hint="remake those pairs, or mark them ok=false",
        )
    rows = []
    for r in kept.itertuples(index=False):
        prompt = [{"role": "user", "content": str(r.prompt)}]
        if persona_in_prompt == "system":
            prompt.insert(0, {"role": "system", "content": persona_system(str(r.persona))})
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": str(r.chosen)}],
                "rejected": [{"role": "assistant", "content": str(r.rejected)}],
                **{c: _plain(getattr(r, c, None)) for c in EXTRA_COLUMNS},
            }
        )
    return rows


def _plain(value: Any) -> Any:
    """numpy / pandas scalars as plain Python values (None for missing)."""
    if value is None or (not isinstance(value, str | bool) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _splits(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by split, known splits first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row["split"]), []).append(row)
    order = [s for s in SPLIT_ORDER if s in out] + sorted(set(out) - set(SPLIT_ORDER))
    return {s: out[s] for s in order}


def _checked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Refuse an empty export."""
    if not rows:
        raise DataError(
            "no pairs to export (none ok, verified, whole and free of prompt text)",
            hint="make more pairs, or pass --include-unverified",
        )
    return rows


def export_trl(
    pairs: pd.DataFrame,
    out_dir: str | Path,
    fmt: Literal["jsonl", "parquet"] = "jsonl",
    persona_in_prompt: PersonaInPrompt = "system",
    include_unverified: bool = False,
    drop_flawed: bool = True,
) -> list[Path]:
    """Write ``<split>.jsonl`` (or ``.parquet``) files of TRL preference rows; return the paths."""
    if fmt not in ("jsonl", "parquet"):
        raise ConfigError(f"TRL export format {fmt!r} is not jsonl or parquet")
    rows = _checked(trl_rows(pairs, persona_in_prompt, include_unverified, drop_flawed))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, items in _splits(rows).items():
        path = out / f"{split}.{fmt}"
        if fmt == "jsonl":
            text = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
            write_text_atomic(text, path)
        else:
            with atomic_path(path) as tmp:
                pq.write_table(pa.Table.from_pylist(items, schema=SCHEMA), tmp)
        paths.append(path)
    return paths


def export_hf(
    pairs: pd.DataFrame,
    out_dir: str | Path,
    persona_in_prompt: PersonaInPrompt = "system",
    include_unverified: bool = False,
    rows_per_shard: int = 50_000,
    drop_flawed: bool = True,
) -> list[Path]:
    """Write a Hugging Face dataset folder (Parquet shards + README.md card) through
    :func:`personasim.export.hf.write_hf_folder` (replacing an earlier export); return the
    shards."""
    from personasim.export.hf import write_hf_folder

    rows = _checked(trl_rows(pairs, persona_in_prompt, include_unverified, drop_flawed))
    splits = {
        split: pa.Table.from_pylist(items, schema=SCHEMA).to_batches()
        for split, items in _splits(rows).items()
    }
    infos = write_hf_folder(
        splits,
        out_dir,
        overwrite=True,
        max_shard_rows=rows_per_shard,
        card=lambda infos: dataset_card(
            pairs,
            {s: (i.rows, i.num_bytes) for s, i in infos.items()},
            persona_in_prompt,
            include_unverified,
        ),
    )
    return [Path(out_dir) / shard for info in infos.values() for shard in info.shards]


def _feature_yaml() -> list[str]:
    """The ``dataset_info.features`` lines of the card."""
    lines = ["  features:"]
    for name in TRL_COLUMNS:
        lines += [
            f"  - name: {name}",
            "    list:",
            "    - name: role",
            "      dtype: string",
            "    - name: content",
            "      dtype: string",
        ]
    types = {"p_chosen": "float64", "verified": "bool"}
    lines += [f"  - name: {c}\n    dtype: {types.get(c, 'string')}" for c in EXTRA_COLUMNS]
    return lines


def _models(pairs: pd.DataFrame, column: str) -> str:
    """The distinct model ids of a column."""
    if column not in pairs.columns:
        return "unknown"
    return ", ".join(sorted(map(str, pairs[column].dropna().unique()))) or "unknown"


def dataset_card(
    pairs: pd.DataFrame,
    sizes: dict[str, tuple[int, int]],
    persona_in_prompt: str,
    include_unverified: bool,
) -> str:
    """The README.md of the dataset folder: YAML header, then prose with the figures.

    ``sizes`` maps each split to its rows and the bytes of its Parquet shards. Every split in
    ``dataset_info.splits`` needs ``name``, ``num_bytes`` and ``num_examples``, or ``datasets``
    ignores the list with a warning; it checks ``num_examples`` against the rows it reads."""
    counts = {s: rows for s, (rows, _) in sizes.items()}
    splits = "\n".join(
        f"  - name: {s}\n    num_bytes: {size}\n    num_examples: {n}"
        for s, (n, size) in sizes.items()
    )
    files = "\n".join(f"  - split: {s}\n    path: data/{s}-*" for s in counts)
    stats = pair_stats(pairs)
    header = [
        "---",
        "license: other",
        "language:",
        "- en",
        "tags:",
        "- synthetic",
        "- preference",
        "- personas",
        "- pluralistic-alignment",
        "dataset_info:",
        *_feature_yaml(),
        "  splits:",
        splits,
        "configs:",
        "- config_name: default",
        "  data_files:",
        files,
        "---",
    ]
    body = CARD.format(
        n=sum(counts.values()),
        personas=pairs["person_id"].nunique(),
        prompts=pairs["prompt_id"].nunique(),
        generator=_models(pairs, "generator"),
        judge=_models(pairs, "judge"),
        mode=persona_in_prompt,
        filtered=(
            "complete pairs, verified or not (see `verified` and `p_chosen`)"
            if include_unverified
            else "only pairs the persona judge verified"
        )
        + "; pairs with a truncated answer or an answer repeating prompt text were dropped",
        counts=", ".join(f"{s}: {n}" for s, n in counts.items()),
        **{k: stats[k] for k in ("verification_rate", "position_consistency", "revision_longer")},
    )
    return "\n".join(header) + "\n" + body


CARD = """
# Synthetic persona preference pairs (personasim PERSONA testbed)

Preference pairs in TRL's conversational format (`prompt`, `chosen`, `rejected`), made by
critique and revision after Castricato et al. (2024), "PERSONA: a reproducible testbed for
pluralistic alignment", with the open-source `personasim` toolkit.

## How it was made

1. Personas: synthetic PERSONA-tier profiles (census-sampled attributes, procedural Big Five and
   traits, LLM-filled open attributes).
2. For each persona, prompts were sampled independently of the persona. `rejected` is the
   model's answer to the prompt alone (no persona).
3. The model, role-playing the persona, critiqued that answer; a revision following the critique
   (asked not to name the persona's attributes and not to get longer) is `chosen`.
4. The persona judged both answers twice, with their order swapped; `p_chosen` is the mean
   probability of `chosen` over both orders, `verified` is `p_chosen > 0.5`.

- Rows: {n} ({counts}); personas: {personas}; prompts: {prompts}.
- Included: {filtered}.
- Persona in prompt: `{mode}` (`system`: the profile is a system message; `none`: left out).
- Generator model: {generator}. Judge model: {judge}.
- Verification rate: {verification_rate}; position consistency of the judge:
  {position_consistency}; revisions longer than the original: {revision_longer}.

Small models give weak pairs and an unreliable judge: read the verification figures before
training on this data.

## License note

The personas are synthetic: no row describes a real person. The prompts come from the prompt set
named in the pipeline (personasim's built-in questions, or a user-supplied set such as PRISM,
CC-BY-4.0); the answers were written by the generator model above and follow its license terms.
"""


def read_export(paths: Sequence[str | Path]) -> pa.Table:
    """Read exported Parquet or JSONL files back into one Arrow table (for checks)."""
    tables = []
    for path in map(Path, paths):
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            tables.append(pa.Table.from_pylist(rows, schema=SCHEMA))
        else:
            tables.append(pq.read_table(path))
    return pa.concat_tables(tables)
