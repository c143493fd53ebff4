"""What an exported preference row carries beside prompt / chosen / rejected, the one persona
system message of training and evaluation, and a dataset card ``datasets`` reads without a
warning. Pairs from the ScriptedStandIn (the row format does not need a model)."""

from __future__ import annotations

import json
import logging
import warnings

import pandas as pd
import pytest
import yaml

from personasim.export.trl import export_hf, export_trl, trl_rows
from personasim.llm import GenerateRequest
from personasim.testbed.evaluate import EvalOptions, evaluate_model
from personasim.testbed.pairs import PairsOptions, make_pairs
from tests.support.scripted import ScriptedStandIn

from .conftest import persona_table
from .test_pairs import two_prompts


def _stand_in() -> ScriptedStandIn:
    """Replies that differ per kind of request (by the user message's length), a judge that
    prefers A."""
    return ScriptedStandIn(
        generate_script=lambda r, _: f"A plain reply of {len(r.messages[-1].content)}.",
        choice_script=lambda r, _: {"A": 0.9, "B": 0.1},
    )


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    """2 personas x 2 prompts of stand-in pairs."""
    options = PairsOptions(per_persona=1, held_out=1, test_share=0.0)
    return make_pairs(persona_table(), two_prompts(), _stand_in(), options).pairs


def test_training_and_evaluation_share_the_persona_system_message(pairs):
    rows = trl_rows(pairs, "system", include_unverified=True, drop_flawed=False)
    trained = {row["person_id"]: row["prompt"][0] for row in rows}
    model = _stand_in()
    evaluate_model(
        persona_table(),
        two_prompts(),
        model,
        options=EvalOptions(modes=("persona",), n_prompts=1, n_boot=0),
    )
    sent = [c for c in model.calls if isinstance(c, GenerateRequest)]
    assert len(sent) == 2
    for pid, text in persona_table().set_index("person_id")["text"].items():
        (request,) = [c for c in sent if text.strip() in c.messages[0].content]
        assert trained[pid] == {"role": "system", "content": request.messages[0].content}


def test_rows_carry_the_persona_its_attributes_and_the_critique(pairs, tmp_path):
    datasets = pytest.importorskip("datasets")
    paths = export_trl(pairs, tmp_path / "trl", "parquet", include_unverified=True)
    loaded = datasets.load_dataset(
        "parquet", data_files={p.stem: str(p) for p in paths}, cache_dir=str(tmp_path / "c")
    )
    got = pd.concat([loaded[s].to_pandas() for s in loaded]).set_index(["person_id", "prompt_id"])
    assert len(got) == len(pairs) == 4
    fields = persona_table().set_index("person_id")["fields"].map(json.loads)
    for pair in pairs.itertuples(index=False):
        row = got.loc[(pair.person_id, pair.prompt_id)]
        assert row["persona"] == pair.persona and row["critique"] == pair.critique
        assert row["critique"] not in (pair.chosen, pair.rejected)  # the critique, no other text
        assert json.loads(row["persona_fields"]) == fields[pair.person_id]
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]


def test_card_lists_every_split_size_and_datasets_loads_it_without_a_warning(pairs, tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "hf"
    export_hf(pairs, folder, include_unverified=True, rows_per_shard=1)
    header = yaml.safe_load((folder / "README.md").read_text().split("---\n")[1])
    splits = {s["name"]: s for s in header["dataset_info"]["splits"]}
    assert set(splits) == {"train", "held_out"}
    for name, split in splits.items():
        shards = sorted((folder / "data").glob(f"{name}-*.parquet"))
        assert len(shards) == 2 and split["num_examples"] == 2
        assert split["num_bytes"] == sum(p.stat().st_size for p in shards)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # the datasets logger does not propagate to caplog
    logger = logging.getLogger("datasets")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            data = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "c"))
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == []
    assert {s: data[s].num_rows for s in data} == {"train": 2, "held_out": 2}
    assert data["train"].info.splits["train"].num_examples == 2
