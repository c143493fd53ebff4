"""``personasim testbed prompts|pairs|export|eval|loo|agreement``: thin wrappers around the
testbed's Python API (:mod:`personasim.testbed`). Each reads and writes Parquet, uses the LLM
cache (a rerun is answered from it), shows progress on stderr and prints a summary."""

from __future__ import annotations

from pathlib import Path

import click

from personasim.cli.llm import backend_options, open_backend
from personasim.cli.main import split_list
from personasim.core.tables import (
    check_output,
    check_output_dir,
    write_atomic,
    write_text_atomic,
)

PATH = click.Path(path_type=Path)


def _questions(source: str, limit: int | None = None) -> list:
    """Preference questions: builtin, a file, or ``pairs:PATH`` (the first ``limit``)."""
    from personasim.testbed.pairs import read_pairs
    from personasim.testbed.questions import load_questions, questions_from_pairs

    if source.startswith("pairs:"):
        return questions_from_pairs(read_pairs(source.removeprefix("pairs:")))[:limit]
    return load_questions(source)[:limit]


QUESTIONS_HELP = "builtin, a YAML/JSONL questions file, or pairs:PAIRS.parquet."
LIMIT_HELP = "Only the first N preference questions."


def _write_png(data_uri: str, path: Path) -> None:
    """Save a figure's PNG next to the tables."""
    from personasim.report.testbed import png_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(data_uri))


@click.group("testbed")
def testbed_group() -> None:
    """The PERSONA testbed: prompt sets, preference pairs, evaluation, leave-one-out, agreement."""


@testbed_group.command("prompts")
@click.option(
    "--prompts",
    "source",
    default="builtin",
    show_default=True,
    help="builtin, or a YAML/JSONL (own or PRISM conversations.jsonl)/CSV/TXT file.",
)
@click.option(
    "--classify", is_flag=True, help="Run the LLM controversy classifier (needs --model)."
)
@click.option(
    "--threshold",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Keep prompts with P(divisive) >= this.",
)
@click.option("--min-words", default=5, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--held-out-share",
    default=0.225,
    show_default=True,
    type=click.FloatRange(0, 1, max_open=True),
    help="Share of each topic held out.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Split seed.")
@click.option("--out", "out_path", default=Path("prompts.parquet"), show_default=True, type=PATH)
@backend_options
def prompts_command(
    source: str,
    classify: bool,
    threshold: float,
    min_words: int,
    held_out_share: float,
    seed: int,
    out_path: Path,
    model: str,
    cache_path: str | None,
    no_cache: bool,
    pairs: tuple[str, ...],
) -> None:
    """Load, curate (with counts per step) and split a prompt set."""
    from personasim.testbed.prompts import curate, load_prompts, split_counts, split_prompts

    check_output(out_path, [("--prompts", source)])
    prompts = load_prompts(source)
    backend = open_backend(model, cache_path, no_cache, pairs) if classify else None
    try:
        curated, report = curate(
            prompts, backend, min_words=min_words, threshold=threshold, progress=True
        )
    finally:
        if backend is not None:
            backend.close()
    table = split_prompts(curated, held_out=held_out_share, seed=seed)
    write_atomic(table, out_path)
    click.echo(report.summary())
    if len(table):
        click.echo(split_counts(table).to_string())
    click.echo(f"wrote {len(table)} prompts to {out_path}")


@testbed_group.command("pairs")
@click.option(
    "--personas",
    "personas_path",
    required=True,
    type=PATH,
    help="personas.parquet with the 'persona' tier.",
)
@click.option(
    "--prompts",
    "source",
    default="builtin",
    show_default=True,
    help="builtin, prompts.parquet from `testbed prompts`, or a prompt file.",
)
@click.option(
    "--per-persona",
    default=150,
    show_default=True,
    type=click.IntRange(min=1),
    help="Train-split prompts per persona.",
)
@click.option(
    "--test-share",
    default=1 / 3,
    show_default="1/3",
    type=click.FloatRange(0, 1, max_open=True),
    help="Of those, the share labelled test.",
)
@click.option(
    "--held-out",
    default=50,
    show_default=True,
    type=click.IntRange(min=0),
    help="Held-out prompts per persona.",
)
@click.option(
    "--persona-test-share",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0, 1, max_open=True),
    help="Share of personas in the persona test split (seeded).",
)
@click.option("--answer-tokens", default=128, show_default=True, type=click.IntRange(8, 4096))
@click.option("--critique-tokens", default=160, show_default=True, type=click.IntRange(8, 4096))
@click.option("--revision-tokens", default=128, show_default=True, type=click.IntRange(8, 4096))
@click.option("--temperature", default=0.7, show_default=True, type=click.FloatRange(0, 2))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--templates",
    "templates_path",
    default=None,
    type=PATH,
    help="YAML with answer_system/critique/revision_system/revision templates.",
)
@click.option("--judge-model", default=None, help="Backend spec of the judge [default: --model].")
@click.option(
    "--out",
    "out_path",
    default=Path("pairs.parquet"),
    show_default=True,
    type=PATH,
    help="Pairs table, written from the parts committed in <stem>.parts/ beside it (resumed "
    "from them; refused when made with other options).",
)
@click.option(
    "--batch-persons",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Personas per committed part (a kill loses at most the batch in flight).",
)
@backend_options
def pairs_command(
    personas_path: Path,
    source: str,
    per_persona: int,
    test_share: float,
    held_out: int,
    persona_test_share: float,
    answer_tokens: int,
    critique_tokens: int,
    revision_tokens: int,
    temperature: float,
    seed: int,
    templates_path: Path | None,
    judge_model: str | None,
    out_path: Path,
    batch_persons: int,
    model: str,
    cache_path: str | None,
    no_cache: bool,
    pairs: tuple[str, ...],
) -> None:
    """Make preference pairs by critique and revision, verified by the persona both ways round."""
    from personasim.testbed.common import persona_tier
    from personasim.testbed.pairs import (
        load_templates,
        make_pairs,
        pairs_options,
        pairs_parts_dir,
    )
    from personasim.testbed.prompts import read_prompt_table

    check_output(out_path, [("--personas", personas_path), ("--prompts", source)])
    check_output_dir(pairs_parts_dir(out_path), why="pairs are committed there as parts")
    extra = {"templates": load_templates(templates_path)} if templates_path else {}
    options = pairs_options(
        per_persona=per_persona,
        test_share=test_share,
        held_out=held_out,
        persona_test_share=persona_test_share,
        answer_tokens=answer_tokens,
        critique_tokens=critique_tokens,
        revision_tokens=revision_tokens,
        temperature=temperature,
        seed=seed,
        chunk=batch_persons,
        **extra,
    )
    personas = persona_tier(personas_path)
    prompts = read_prompt_table(source)
    backend = open_backend(model, cache_path, no_cache, pairs)
    judge = open_backend(judge_model, cache_path, no_cache, ()) if judge_model else None
    try:
        result = make_pairs(personas, prompts, backend, options, judge=judge, out=out_path)
    finally:
        backend.close()
        if judge is not None:
            judge.close()
    click.echo(result.summary())
    click.echo(f"wrote {len(result.pairs)} pairs to {out_path}")


@testbed_group.command("export")
@click.option("--pairs", "pairs_path", required=True, type=PATH, help="pairs.parquet.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["trl", "hf"]),
    default="trl",
    show_default=True,
    help="TRL preference files, or a Hugging Face dataset folder.",
)
@click.option(
    "--file-format",
    type=click.Choice(["jsonl", "parquet"]),
    default="jsonl",
    show_default=True,
    help="With --format trl: JSONL or Parquet files.",
)
@click.option(
    "--persona-in-prompt",
    type=click.Choice(["system", "none"]),
    default="system",
    show_default=True,
    help="Persona as a system message, or left out.",
)
@click.option(
    "--include-unverified",
    is_flag=True,
    help="Keep pairs the persona judge did not verify (default: verified only).",
)
@click.option("--rows-per-shard", default=50_000, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=PATH,
    help="Output folder (new or empty unless --overwrite).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the files of an earlier export in --out (never an input).",
)
def export_command(
    pairs_path: Path,
    fmt: str,
    file_format: str,
    persona_in_prompt: str,
    include_unverified: bool,
    rows_per_shard: int,
    out_dir: Path,
    overwrite: bool,
) -> None:
    """Export pairs to TRL's conversational preference format or a HF dataset folder."""
    from personasim.export.trl import export_hf, export_trl
    from personasim.testbed.export_filter import select_pairs
    from personasim.testbed.pairs import read_pairs

    check_output_dir(out_dir, inputs=[("--pairs", pairs_path)], fresh=not overwrite)

    table = read_pairs(pairs_path)
    if fmt == "trl":
        paths = export_trl(
            table,
            out_dir,
            file_format,
            persona_in_prompt,  # type: ignore[arg-type]
            include_unverified,
        )
    else:
        paths = export_hf(
            table,
            out_dir,
            persona_in_prompt,  # type: ignore[arg-type]
            include_unverified,
            rows_per_shard,
        )
    click.echo(select_pairs(table, include_unverified).summary())
    for path in paths:
        click.echo(f"wrote {path}")


@testbed_group.command("eval")
@click.option("--personas", "personas_path", required=True, type=PATH)
@click.option(
    "--prompts",
    "source",
    default="builtin",
    show_default=True,
    help="Prompt set (held-out split used when present).",
)
@click.option("--n-prompts", default=20, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--modes",
    default="persona,baseline",
    show_default=True,
    help="Any of persona, baseline, chain_of_thought, demographic_summary.",
)
@click.option("--answer-tokens", default=128, show_default=True, type=click.IntRange(8, 4096))
@click.option(
    "--preamble-tokens",
    default=160,
    show_default=True,
    type=click.IntRange(8, 4096),
    help="Token cap of the reasoning (chain_of_thought) or summary (demographic_summary).",
)
@click.option(
    "--k",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Answers sampled per item (pass@1..k); 1 = one greedy answer.",
)
@click.option(
    "--temperature",
    default=0.7,
    show_default=True,
    type=click.FloatRange(0, 2, min_open=True),
    help="Sampling temperature when --k > 1.",
)
@click.option(
    "--by",
    default=None,
    metavar="ATTR[,ATTR...]",
    help="Score per group of personas sharing these attributes' values.",
)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="ATTR=VALUE",
    help="Only personas with this attribute value (repeatable: their intersection).",
)
@click.option("--critic-model", default=None, help="Backend spec of the critic [default: --model].")
@click.option(
    "--compare",
    "compare",
    multiple=True,
    metavar="SPEC",
    help="Another model under test, scored beside --model (repeatable).",
)
@click.option("--n-boot", default=1000, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--out",
    "out_path",
    default=Path("eval.parquet"),
    show_default=True,
    type=PATH,
    help="One row per item x sample; STEM_summary.csv, STEM_pass_at_k.csv and (with --by) "
    "STEM_by_group.csv are written beside it.",
)
@backend_options
def eval_command(
    personas_path: Path,
    source: str,
    n_prompts: int,
    modes: str,
    answer_tokens: int,
    preamble_tokens: int,
    k: int,
    temperature: float,
    by: str | None,
    where: tuple[str, ...],
    critic_model: str | None,
    compare: tuple[str, ...],
    n_boot: int,
    seed: int,
    out_path: Path,
    model: str,
    cache_path: str | None,
    no_cache: bool,
    pairs: tuple[str, ...],
) -> None:
    """Evaluate --model: share of answers a persona critic would not revise, with a CI."""
    from personasim.testbed.common import make_options, persona_tier
    from personasim.testbed.eval_groups import parse_where, select_personas
    from personasim.testbed.evaluate import EvalOptions, evaluate_model
    from personasim.testbed.prompts import read_prompt_table, split_prompts

    outputs = _eval_outputs(out_path)
    inputs = [("--personas", personas_path), ("--prompts", source)]
    for path in outputs.values():
        check_output(path, inputs)
    options = make_options(
        EvalOptions,
        "eval options",
        modes=tuple(split_list(modes)),
        n_prompts=n_prompts,
        answer_tokens=answer_tokens,
        preamble_tokens=preamble_tokens,
        k=k,
        temperature=temperature,
        where=parse_where(where),
        by=tuple(split_list(by)) if by else (),
        seed=seed,
        n_boot=n_boot,
    )
    personas = persona_tier(personas_path)
    select_personas(personas, options.where, options.by)  # refused before any model work
    prompts = read_prompt_table(source)
    if prompts["split"].isna().all():
        prompts = split_prompts(prompts, seed=seed)
    backend = open_backend(model, cache_path, no_cache, pairs)
    critic = open_backend(critic_model, cache_path, no_cache, ()) if critic_model else None
    others = [open_backend(spec, cache_path, no_cache, ()) for spec in compare]
    try:
        result = evaluate_model(personas, prompts, backend, critic, options, others)
    finally:
        for opened in (backend, critic, *others):
            if opened is not None:
                opened.close()
    write_atomic(result.rows, outputs["rows"])
    tables = [("summary", result.summary), ("pass_at_k", result.pass_at_k)]
    if options.by:
        tables.append(("by_group", result.by_group))
    for name, table in tables:
        write_text_atomic(table.to_csv(index=False), outputs[name])
    click.echo(result.text())
    click.echo(f"wrote {len(result.rows)} verdicts to {out_path} (summaries beside it)")


def _eval_outputs(out_path: Path) -> dict[str, Path]:
    """Where ``testbed eval`` writes: the rows, then each summary table as CSV beside them."""
    stem = out_path.with_suffix("")
    tables = ("summary", "pass_at_k", "by_group")
    return {"rows": out_path, **{n: stem.with_name(f"{stem.name}_{n}.csv") for n in tables}}


@testbed_group.command("loo")
@click.option("--personas", "personas_path", required=True, type=PATH)
@click.option("--questions", "source", default="builtin", show_default=True, help=QUESTIONS_HELP)
@click.option("--limit-questions", default=None, type=click.IntRange(min=1), help=LIMIT_HELP)
@click.option(
    "--attributes",
    default=None,
    metavar="A,B,...",
    help="Attributes to test [default: all in the profiles].",
)
@click.option("--n-personas", default=40, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--k",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="Attributes per persona before the left-out one is added.",
)
@click.option("--n-boot", default=1000, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--protocol",
    type=click.Choice(["paper", "choice"]),
    default="paper",
    show_default=True,
    help="paper: baselines critiqued and revised for each version (§4.1); choice: "
    "each version picks among fixed answers (--questions), cheaper.",
)
@click.option(
    "--prompts",
    "prompt_source",
    default="builtin",
    show_default=True,
    help="paper: questions (builtin, a prompt file, prompts.parquet, or pairs:PATH "
    "whose persona-free answers are the baselines).",
)
@click.option(
    "--n-questions",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="paper: questions with a baseline answer.",
)
@click.option("--answer-tokens", default=128, show_default=True, type=click.IntRange(8, 4096))
@click.option("--critique-tokens", default=160, show_default=True, type=click.IntRange(8, 4096))
@click.option("--revision-tokens", default=128, show_default=True, type=click.IntRange(8, 4096))
@click.option(
    "--out",
    "out_path",
    default=Path("loo.parquet"),
    show_default=True,
    type=PATH,
    help="Kappa per persona pair; the summary and box plot are written beside it.",
)
@backend_options
def loo_command(
    personas_path: Path,
    source: str,
    limit_questions: int | None,
    attributes: str | None,
    n_personas: int,
    k: int,
    n_boot: int,
    seed: int,
    protocol: str,
    prompt_source: str,
    n_questions: int,
    answer_tokens: int,
    critique_tokens: int,
    revision_tokens: int,
    out_path: Path,
    model: str,
    cache_path: str | None,
    no_cache: bool,
    pairs: tuple[str, ...],
) -> None:
    """Leave-one-out attribute influence (Cohen's kappa with vs without each attribute)."""
    from personasim.report.testbed import loo_boxplot
    from personasim.testbed.common import make_options, persona_tier

    if protocol == "paper":
        from personasim.cli.testbed_loo import run_paper_loo

        run_paper_loo(
            personas_path,
            prompt_source,
            out_path,
            (model, cache_path, no_cache, pairs),
            attributes=tuple(split_list(attributes)) if attributes else None,
            n_personas=n_personas,
            k=k,
            n_questions=n_questions,
            seed=seed,
            n_boot=n_boot,
            generation={
                "answer_tokens": answer_tokens,
                "critique_tokens": critique_tokens,
                "revision_tokens": revision_tokens,
            },
        )
        return
    from personasim.testbed.loo import LooOptions, leave_one_out

    check_output(out_path, [("--personas", personas_path)])
    options = make_options(
        LooOptions,
        "loo options",
        attributes=tuple(split_list(attributes)) if attributes else None,
        n_personas=n_personas,
        k=k,
        seed=seed,
        n_boot=n_boot,
    )
    personas = persona_tier(personas_path)
    questions = _questions(source, limit_questions)
    backend = open_backend(model, cache_path, no_cache, pairs)
    try:
        result = leave_one_out(personas, questions, backend, options, progress=True)
    finally:
        backend.close()
    write_atomic(result.pairs, out_path)
    write_atomic(result.summary, out_path.with_name(out_path.stem + "_summary.parquet"))
    _write_png(loo_boxplot(result.pairs, result.summary), out_path.with_suffix(".png"))
    click.echo(result.text())
    click.echo(f"wrote {len(result.pairs)} persona pairs to {out_path}")


@testbed_group.command("agreement")
@click.option("--personas", "personas_path", required=True, type=PATH)
@click.option(
    "--items",
    "source",
    default="builtin",
    show_default=True,
    help="Items: pairs:PAIRS.parquet, items:ITEMS.parquet, or a prompt set (builtin, "
    "a PRISM CSV, prompts.parquet) made into pairs by --model.",
)
@click.option(
    "--per-persona",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Items per persona (the paper: 10).",
)
@click.option(
    "--rater",
    "raters",
    multiple=True,
    metavar="[NAME=]SPEC",
    help="Another model rater (backend spec; repeatable).",
)
@click.option(
    "--humans",
    "humans_path",
    default=None,
    type=PATH,
    help="Per-annotator labels: a CSV annotator,persona_id,question_id,choice or the "
    "annotation page's labels folder.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--out",
    "out_dir",
    default=Path("agreement"),
    show_default=True,
    type=PATH,
    help="Folder for items, labels, kappa tables and figures.",
)
@backend_options
def agreement_command(
    personas_path: Path,
    source: str,
    per_persona: int,
    raters: tuple[str, ...],
    humans_path: Path | None,
    seed: int,
    out_dir: Path,
    model: str,
    cache_path: str | None,
    no_cache: bool,
    pairs: tuple[str, ...],
) -> None:
    """Role-play agreement: models vs the human majority, and the human baseline (kappa)."""
    from personasim.cli.testbed_roleplay import run_agreement

    run_agreement(
        personas_path,
        source,
        humans_path,
        out_dir,
        model,
        raters,
        per_persona,
        seed,
        (cache_path, no_cache, pairs),
    )


@testbed_group.command("annotate")
@click.option(
    "--items",
    "source",
    required=True,
    help="pairs:PAIRS.parquet or items:ITEMS.parquet (the items the humans label).",
)
@click.option(
    "--roster",
    "roster_path",
    required=True,
    type=PATH,
    help="CSV annotator,persona_id: who labels which persona.",
)
@click.option(
    "--per-persona",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="With pairs:, items per persona (the paper: 10).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--out",
    "out_dir",
    default=Path("annotation"),
    show_default=True,
    type=PATH,
    help="Folder: items.parquet and labels/<annotator>.csv (resumed when present).",
)
def annotate_command(
    source: str, roster_path: Path, per_persona: int, seed: int, port: int, out_dir: Path
) -> None:
    """Serve the annotation page for humans imitating personas (local, offline)."""
    from personasim.cli.testbed_annotate import serve

    serve(source, roster_path, per_persona, seed, port, out_dir)
