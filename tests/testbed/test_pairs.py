"""Preference pairs end to end on the real embedded model (2 hand-written PERSONA-tier profiles x
2 prompts), the verification read from both orders, resuming, the TRL / Hugging Face exports
loaded back, the persona-judged evaluation; failure paths with the ScriptedStandIn."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from personasim.export.trl import export_hf, export_trl, read_export, trl_rows
from personasim.testbed.common import judge_requests
from personasim.testbed.evaluate import EvalOptions, evaluate_model
from personasim.testbed.pairs import PairsOptions, clean_revision, make_pairs, pair_stats
from personasim.testbed.prompts import builtin_prompts
from tests.support.scripted import ScriptedStandIn, backend_failure

from .conftest import persona_table

#: Small token caps keep 2 personas x 2 prompts well under a minute on 2 shared cores.
SMALL = {
    "per_persona": 2,
    "held_out": 1,
    "test_share": 0.5,
    "answer_tokens": 48,
    "critique_tokens": 64,
    "revision_tokens": 48,
}


def two_prompts():
    """One train and one held-out prompt of the built-in set."""
    prompts = builtin_prompts()
    prompts = prompts[prompts["prompt_id"].isin(["work-01", "climate-04"])].copy()
    prompts["split"] = ["train", "held_out"][: len(prompts)]
    return prompts.reset_index(drop=True)


@pytest.fixture(scope="module")
def run(embedded, tmp_path_factory):
    """Pairs made once on the embedded model, written to a file."""
    from personasim.llm.base import BackendStats

    saved = embedded.cache
    embedded.cache, embedded.stats = None, BackendStats()
    out = tmp_path_factory.mktemp("pairs") / "pairs.parquet"
    result = make_pairs(persona_table(), two_prompts(), embedded, PairsOptions(**SMALL), out=out)
    yield SimpleNamespace(result=result, out=out, backend=embedded)
    embedded.cache = saved


@pytest.mark.slow
def test_pairs_are_produced_for_every_persona_and_prompt(run):
    pairs = run.result.pairs
    assert len(pairs) == 4 and run.result.made == 4
    assert set(pairs["split"]) == {"train", "held_out"}
    assert pairs[["rejected", "critique", "chosen"]].map(lambda s: bool(s.strip())).all().all()
    # the persona-free answer is shared by all personas for one prompt
    assert pairs.groupby("prompt_id")["rejected"].nunique().eq(1).all()
    print(run.result.summary())


@pytest.mark.slow
def test_verification_is_read_from_both_orders(run):
    pairs = run.result.pairs
    row = pairs.iloc[0]
    first, second = run.backend.choice_logprobs(
        judge_requests(row["persona"], row["prompt"], row["chosen"], row["rejected"])
    )
    assert row["p_chosen_as_a"] == pytest.approx(first.probs["A"])
    assert row["p_chosen_as_b"] == pytest.approx(second.probs["B"])
    assert row["p_chosen"] == pytest.approx((first.probs["A"] + second.probs["B"]) / 2)
    assert bool(row["position_consistent"]) == (
        (first.probs["A"] > 0.5) == (second.probs["B"] > 0.5)
    )
    assert (pairs["verified"] == (pairs["ok"] & (pairs["p_chosen"] > 0.5))).all()
    stats = pair_stats(pairs)
    assert stats["verification_rate"].endswith("%") and stats["ok"] == 4


@pytest.mark.slow
def test_rerun_keeps_written_rows_without_model_calls(run):
    calls = run.backend.stats.model_calls
    again = make_pairs(
        persona_table(), two_prompts(), run.backend, PairsOptions(**SMALL), out=run.out
    )
    assert again.made == 0 and len(again.pairs) == 4
    assert run.backend.stats.model_calls == calls


@pytest.mark.slow
def test_trl_export_loads_back_with_the_preference_columns(run, tmp_path):
    pairs = run.result.pairs
    # every pair, so the format is checked whatever the small model's verdicts and truncations
    paths = export_trl(
        pairs, tmp_path / "trl", "jsonl", "system", include_unverified=True, drop_flawed=False
    )
    assert sorted(p.name for p in paths) == ["held_out.jsonl", "train.jsonl"]
    table = read_export(paths)
    assert {"prompt", "chosen", "rejected"} <= set(table.column_names) and table.num_rows == 4
    row = json.loads(paths[0].read_text().splitlines()[0])
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert (
        [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
    )
    none = export_trl(
        pairs, tmp_path / "trl_none", "parquet", "none", include_unverified=True, drop_flawed=False
    )
    prompts = pq.read_table(none[0]).column("prompt").to_pylist()
    assert all([m["role"] for m in p] == ["user"] for p in prompts)


@pytest.mark.slow
def test_hf_folder_has_shards_and_a_card_and_loads_with_datasets(run, tmp_path):
    folder = tmp_path / "hf"
    shards = export_hf(
        run.result.pairs, folder, include_unverified=True, rows_per_shard=1, drop_flawed=False
    )
    names = sorted(p.name for p in shards)
    assert "train-00000-of-00002.parquet" in names and "held_out-00001-of-00002.parquet" in names
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "path: data/train-*" in card
    assert "synthetic" in card and "Verification rate" in card
    datasets = pytest.importorskip("datasets")
    data = datasets.load_dataset(
        "parquet",
        data_files={
            "train": str(folder / "data" / "train-*.parquet"),
            "held_out": str(folder / "data" / "held_out-*.parquet"),
        },
        cache_dir=str(tmp_path / "cache"),
    )
    assert data["train"].num_rows == 2 and data["held_out"].num_rows == 2
    assert {"prompt", "chosen", "rejected"} <= set(data["train"].column_names)
    assert data["train"][0]["chosen"][0]["role"] == "assistant"


@pytest.mark.slow
def test_persona_judged_evaluation_beside_the_baseline(embedded):
    prompts = two_prompts()
    options = EvalOptions(n_prompts=1, answer_tokens=48, n_boot=50)
    result = evaluate_model(persona_table(), prompts, embedded, options=options)
    assert set(result.summary["mode"]) == {"persona", "baseline"}
    assert (result.summary["n_personas"] == 2).all()
    assert result.rows["p_fine"].between(0, 1).all()
    assert (result.rows["fine"] == (result.rows["p_fine"] > 0.5)).all()
    baseline = result.rows[result.rows["mode"] == "baseline"]
    assert baseline.groupby("prompt_id")["answer"].nunique().eq(1).all()
    print(result.text())


def _script(fail: str):
    """Replies for every step; the step named ``fail`` fails in the backend."""

    def generate(request, _seen):
        text = request.messages[-1].content
        step = (
            "revision" if "CRITIQUE:" in text else "critique" if "EVALUATION" in text else "answer"
        )
        if step == fail:
            return backend_failure()
        return {
            "answer": "A long answer about it.",
            "critique": "EVALUATION: fine",
            "revision": "Revised answer: A short one. DONE",
        }[step]

    return generate


def test_backend_failures_and_zero_mass_are_rows_not_crashes(tmp_path):
    stand_in = ScriptedStandIn(
        generate_script=_script("critique"), choice_script=lambda r, _: {"A": 0.0, "B": 0.0}
    )
    result = make_pairs(
        persona_table(),
        two_prompts(),
        stand_in,
        PairsOptions(per_persona=1, held_out=0, test_share=0.0),
    )
    assert len(result.pairs) == 2 and not result.pairs["ok"].any()
    assert result.pairs["error"].str.contains("503").all()
    assert not result.pairs["verified"].any()
    with pytest.raises(Exception, match="no pairs to export"):
        export_trl(result.pairs, tmp_path / "none")


def test_a_zero_mass_judge_never_verifies_and_revisions_are_cleaned():
    stand_in = ScriptedStandIn(
        generate_script=_script("none"), choice_script=lambda r, _: {"A": 0.0, "B": 0.0}
    )
    pairs = make_pairs(
        persona_table(), two_prompts(), stand_in, PairsOptions(per_persona=1, held_out=1)
    ).pairs
    assert pairs["ok"].all() and not pairs["verified"].any()
    assert (pairs["judge_valid_mass"] == 0).all()
    assert set(pairs["chosen"]) == {"A short one."}
    assert clean_revision("REVISED PREFERENCE:\nShorter.\nDONE") == "Shorter."
    assert len(trl_rows(pairs, "none")) == 0  # verified pairs only by default
    assert len(trl_rows(pairs, "none", include_unverified=True)) == len(pairs)


def test_a_critic_that_always_says_a_scores_one_half_and_counts_as_not_fine():
    stand_in = ScriptedStandIn(
        generate_script=lambda r, _: "An answer.", choice_script=lambda r, _: {"A": 0.7, "B": 0.3}
    )
    result = evaluate_model(
        persona_table(), two_prompts(), stand_in, options=EvalOptions(n_prompts=1, n_boot=20)
    )
    # "fine" is A in one order and B in the other: a pure position bias averages to 0.5
    assert result.rows["p_fine"].tolist() == pytest.approx([0.5] * 4)
    assert (result.summary["score"] == 0.0).all()
