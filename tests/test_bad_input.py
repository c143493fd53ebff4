"""Bad input, table-driven: every case ends in exactly one stderr line ``error: ...``, exit 2, no
traceback, and leaves a pre-existing output file byte-identical.

Cases run in-process through :func:`personasim.cli.main.main` (fast); a few run through a real
``personasim`` subprocess, which also covers the entry point and interpreter start-up. No case
reaches a model: each is refused before any model work (an unreachable endpoint is refused on
its first connection).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from personasim.cli.main import main
from tests.support.local_server import free_port

ENTRY = Path(sys.executable).parent / "personasim"

POPULATION = pd.DataFrame(
    {
        "person_id": [1, 2],
        "state": ["TX", "OH"],
        "weight": [1.0, 2.0],
        "age": [40, 61],
        "sex": ["Male", "Female"],
        "race": ["White", "Asian"],
    }
)
"""A two-person population with the columns the meta tier shows."""

PERSONAS = pd.DataFrame(
    {
        "person_id": [1, 2],
        "tier": ["meta", "meta"],
        "generator": ["template", "template"],
        "text": ["A 40-year-old man from Texas.", "A 61-year-old woman from Ohio."],
        "weight": [1.0, 2.0],
        "state": ["TX", "OH"],
    }
)
"""Two valid personas."""

RESPONSES = pd.DataFrame(
    {
        "person_id": [1, 2],
        "tier": ["meta"] * 2,
        "generator": ["template"] * 2,
        "simulator": ["llamacpp"] * 2,
        "question_id": ["president_2020"] * 2,
        "estimator": ["logprobs"] * 2,
        "probs": [[0.6, 0.4], [0.3, 0.7]],
    }
)
"""Two valid responses (for cases about the other inputs of ``score``)."""

GUARD = "out.parquet"
"""The pre-existing output file of every case that names one (``{out}`` in its arguments)."""

FILES: dict[str, str] = {
    "bools.yaml": "id: b\nquestions:\n  - id: q\n    text: Do you?\n    options: [Yes, No]\n",
    "typo.yaml": "id: t\nquestions:\n  - id: q\n    text: Do you?\n    optoins: [a, b]\n",
    "broken.yaml": "id: x\nquestions: [\n",
    "notjson.json": "{not json",
    "study-typo.toml": 'name = "t"\nstatess = ["TX"]\n',
    "study-syntax.toml": "name = \n",
    "table.csv": "a,b\n1,2\n",
    # respondent microdata (microdata:MAPPING): one answer code (7) and one weight (-1) bad
    "md-survey.yaml": (
        "id: md\nquestions:\n  - id: q\n    text: Agree?\n    options: [Agree, Disagree]\n"
    ),
    "md-people.csv": "wt,ans,sex,bad_wt,odd\n1,1,1,1,1\n2,2,2,-1,7\n",
    **{
        f"md-{name}.yaml": (
            f"data: md-people.csv\nsurvey: md-survey.yaml\nweight: {weight}\nquestions:\n"
            f"  q: {{column: {answer}, codes: {{1: Agree, 2: Disagree}}}}\ngroups:\n"
            f"  - {{column: sex, attribute: SEX, codes: {{1: Male, 2: {level}}}}}\n"
        )
        for name, weight, answer, level in [
            ("unmapped-code", "wt", "odd", "Female"),
            ("negative-weight", "bad_wt", "ans", "Female"),
            ("missing-column", "wt", "answer", "Female"),
            ("no-persons", "wt", "ans", "Woman"),
        ]
    },
    "tpl-placeholder.yaml": 'critique: "Asked {questoin}, answered {answer}"\n',
    "tpl-brace.yaml": 'revision: "Rewrite {answer} for {question"\n',
    "other.yaml": "id: other\nquestions:\n  - id: q\n    text: Tea?\n    options: [tea, coffee]\n",
    # a prompt set whose name is what `testbed eval --out {d}/ev.parquet` writes its summary to
    "ev_summary.csv": "text\nWhy do people disagree so much about taxes these days?\n",
    # a generator naming no backend while the only tier (meta) needs none
    "study-unused-generator.toml": (
        'name = "g"\n[population]\nstates = ["VT"]\nper_state = 2\n[personas]\n'
        'tiers = ["meta"]\ngenerators = ["nosuch"]\n[simulate]\nsimulators = ["embedded"]\n'
        '[backends.embedded]\nspec = "llamacpp"\n[[surveys]]\nid = "elections"\n'
        'source = "elections"\n'
    ),
    "study-bad-url.toml": (
        'name = "u"\n[population]\nstates = ["VT"]\nper_state = 2\n[personas]\n'
        'tiers = ["meta"]\n[simulate]\nsimulators = ["server"]\n[backends.server]\n'
        'spec = "openai:m@http://127.0.0.1:99999/v1"\n[[surveys]]\nid = "elections"\n'
        'source = "elections"\n'
    ),
}
"""Small bad input files written into each case's folder."""


def _frames(folder: Path) -> None:
    POPULATION.to_parquet(folder / "population.parquet", index=False)
    PERSONAS.to_parquet(folder / "personas.parquet", index=False)
    PERSONAS.drop(columns="person_id").to_parquet(folder / "no-id.parquet", index=False)
    RESPONSES.to_parquet(folder / "responses.parquet", index=False)
    PERSONAS.assign(text=[1, 2]).to_parquet(folder / "int-text.parquet", index=False)
    PERSONAS.assign(text=["", "x"]).to_parquet(folder / "empty-text.parquet", index=False)
    PERSONAS.assign(person_id=[7, 7]).to_parquet(folder / "twice.parquet", index=False)
    POPULATION.head(0).to_parquet(folder / "empty.parquet", index=False)
    (folder / "clash").mkdir()  # parts whose "text" is a string, then a list
    PERSONAS.head(1).to_parquet(folder / "clash" / "part-00000.parquet", index=False)
    PERSONAS.tail(1).assign(text=[["x"]]).to_parquet(
        folder / "clash" / "part-00001.parquet", index=False
    )
    PERSONAS.assign(tier="persona").to_parquet(folder / "persona-tier.parquet", index=False)
    PERSONAS.assign(
        tier="persona",
        fields=[json.dumps({"sex": "Male", "race": "White"}), json.dumps({"sex": "Female"})],
    ).to_parquet(folder / "persona-fields.parquet", index=False)
    pd.DataFrame(
        {
            "person_id": ["1"],
            "prompt_id": ["q"],
            "persona": ["- Age: 40"],
            "prompt": ["Why?"],
            "rejected": ["Because."],
            "chosen": ["For you, because."],
            "split": ["train"],
            "ok": [True],
        }
    ).to_parquet(folder / "pairs.parquet")
    (folder / "big.yaml").write_text("id: big\n" + "# padding\n" * 120_000)  # 1.2 MB
    for name, text in FILES.items():
        (folder / name).write_text(text)
    _hardening_frames(folder)


def _hardening_frames(folder: Path) -> None:
    """Inputs of the issue-20 cases: unusable weights, responses that cannot be scored, a pairs
    folder, an export folder, a read-only folder."""
    for name, values in {
        "nan": [float("nan"), 1.0],
        "str": ["heavy", "1"],
        "zero": [0.0, 0.0],
        "neg": [-1.0, 2.0],
        "inf": [float("inf"), 1.0],
    }.items():
        pd.DataFrame({"person_id": [1, 2], "weight": values}).to_parquet(
            folder / f"w-{name}.parquet", index=False
        )
    pd.DataFrame({"person_id": [1, 2], "weight": [1.0, 3.0]}).to_parquet(
        folder / "w-ok.parquet", index=False
    )
    pd.DataFrame({"person_id": [1, 1, 2], "weight": [1.0, 5.0, 1.0]}).to_parquet(
        folder / "w-twice.parquet", index=False
    )
    pd.DataFrame({"person_id": [501, 502], "weight": [1.0, 1.0]}).to_parquet(
        folder / "w-other.parquet", index=False
    )
    RESPONSES.assign(probs=[[5.0, 5.0], [0.3, 0.7]]).to_parquet(
        folder / "probs-5-5.parquet", index=False
    )
    RESPONSES.assign(probs=["[0.6, 0.4]", "[0.3, 0.7]"]).to_parquet(
        folder / "probs-text.parquet", index=False
    )
    (folder / "dup").mkdir()  # the same answer row in two parts
    RESPONSES.to_parquet(folder / "dup" / "part-00000.parquet", index=False)
    RESPONSES.head(1).to_parquet(folder / "dup" / "part-00001.parquet", index=False)
    POPULATION.assign(person_id=[3, 3]).to_parquet(folder / "one-id.parquet", index=False)
    POPULATION.assign(weight=[0.0, 0.0]).to_parquet(folder / "zero-weights.parquet", index=False)
    (folder / "tb").mkdir()  # a pairs file inside the folder an export is aimed at
    pd.read_parquet(folder / "pairs.parquet").assign(
        verified=[True],
        p_chosen=[0.8],
        position_consistent=[True],
        revision_longer=[False],
        chosen_truncated=[False],
        judge_valid_mass=[0.9],
    ).to_parquet(folder / "tb" / "pairs.parquet", index=False)
    (folder / "tb" / "train.jsonl").write_text('{"kept": "a line the user wrote"}\n')
    pd.read_parquet(folder / "tb" / "pairs.parquet").assign(chosen=[None]).to_parquet(
        folder / "null-chosen.parquet", index=False
    )
    (folder / "exp").mkdir()  # a personas folder of parts, exported onto itself
    PERSONAS.to_parquet(folder / "exp" / "part-00000.parquet", index=False)
    (folder / "targets-header.csv").write_text("variable,level,share\n")
    (folder / "targets-absent.csv").write_text(
        "variable,level,share,group\nsex,Male,0.5,ZZ\nsex,Female,0.5,ZZ\n"
    )
    (folder / "empty-prompts.csv").write_text("text\n")
    (folder / "mapping.yaml").write_text("a: 1\nb: 2\n")
    (folder / "folder-out").mkdir()
    _hardening_studies(folder)
    _made_folders(folder)


def _made_folders(folder: Path) -> None:
    """Parts folders whose rows (every key done) were made with the default options, for the
    resume-with-other-options cases (issue 20 §2): responses with logprobs, with sample, from
    a population's meta personas, and a meta personas folder."""
    from personasim.core.parts import check_made_with, commit_part
    from personasim.personas.meta import DEFAULT_ATTRIBUTES
    from personasim.pipeline.jobs import persona_digests, personas_to_parts, simulate_record
    from personasim.simulate.plan import SimulateOptions
    from personasim.survey.loaders import load_survey

    (folder / "other-changed.yaml").write_text(
        FILES["other.yaml"].replace("Tea?", "Tea or coffee, really?")
    )
    survey = load_survey(str(folder / "other.yaml"))
    rows = PERSONAS[["person_id", "tier", "generator"]].assign(
        simulator="s", question_id="q", probs=[[0.6, 0.4], [0.3, 0.7]]
    )
    attributes = {"attributes": list(DEFAULT_ATTRIBUTES)}
    changed = PERSONAS.assign(text=["A 40-year-old man from Texas.", "Someone else entirely."])
    changed.to_parquet(folder / "personas-changed.parquet", index=False)
    for name, estimator, extra in [
        ("made-resp", "logprobs", {"persona": persona_digests(PERSONAS)}),
        ("made-sample", "sample", {}),
        ("made-pop", "logprobs", attributes),
    ]:
        options = SimulateOptions(simulator="s", estimator=estimator)
        commit_part(rows.assign(estimator=estimator), folder / name)
        check_made_with(folder / name, {**simulate_record(options, survey), **extra}, "")
    personas_to_parts(
        POPULATION,
        ["meta"],
        folder / "made-pers",
        show_progress=False,
        seed=0,
        prompt_file=None,
        temperature=0.7,
        max_attempts=3,
        meta_attributes=DEFAULT_ATTRIBUTES,
    )


STUDY_HEAD = (
    'name = "h"\n[population]\nstates = ["VT"]\nper_state = 2\n[personas]\n'
    'tiers = ["{tiers}"]\n[simulate]\nsimulators = ["embedded"]\n'
    '[backends.embedded]\nspec = "llamacpp"\n'
)
"""A tiny study (its tier, then any section) for the checked-before-any-stage cases."""


def _hardening_studies(folder: Path) -> None:
    """Studies whose problem is checkable before the first stage (issue 20 §3)."""
    elections = '[[surveys]]\nid = "elections"\nsource = "elections"\n'
    (folder / "tpl-persona.txt").write_text("Write a persona for {METADATA} as {TEMPLTE}.\n")
    (folder / "humans-banana.csv").write_text(
        "rater,persona_id,question_id,choice\nh1,1,weekend,banana\n"
    )
    (folder / "truth-bad.csv").write_text("question_id,option,count\nq,tea,3\nq,maybe,2\n")
    studies = {
        "study-calibration-targets.toml": STUDY_HEAD.format(tiers="meta")
        + elections
        + f'[calibration]\ntargets = "census,csv:{folder}/none.csv"\ntiers = ["meta"]\n',
        "study-truth-options.toml": STUDY_HEAD.format(tiers="meta")
        + f'[[surveys]]\nid = "other"\nsource = "{folder}/other.yaml"\n'
        + f'truth = "csv:{folder}/truth-bad.csv"\n',
        "study-testbed-prompts.toml": STUDY_HEAD.format(tiers="persona")
        + elections
        + f'[testbed]\nprompts = "{folder}/mapping.yaml"\n',
        "study-testbed-humans.toml": STUDY_HEAD.format(tiers="persona")
        + elections
        + f'[testbed]\nhumans = "{folder}/none.csv"\n',
        "study-testbed-protocol.toml": STUDY_HEAD.format(tiers="persona")
        + elections
        + '[testbed]\nloo_protocol = "fast"\n',
        "study-testbed-one-rater.toml": STUDY_HEAD.format(tiers="persona")
        + elections
        + "[testbed]\nreversed_rater = false\n",
        "study-ray.toml": STUDY_HEAD.format(tiers="meta")
        + elections
        + '[executor]\nkind = "ray"\naddress = "10.255.255.1:6379"\n',
        "study-testbed-humans-columns.toml": STUDY_HEAD.format(tiers="persona")
        + elections
        + f'[testbed]\nhumans = "{folder}/table.csv"\n',
        "study-testbed-humans-banana.toml": STUDY_HEAD.format(tiers="persona")
        + elections
        + f'[testbed]\nhumans = "{folder}/humans-banana.csv"\n',
        "study-testbed-loo-attribute.toml": STUDY_HEAD.format(tiers="persona")
        + elections
        + '[testbed]\nloo_attributes = ["religon"]\n',
        "study-testbed-rater.toml": STUDY_HEAD.format(tiers="persona")
        + elections
        + '[testbed]\nraters = ["embeded"]\n',
        "study-personas-template.toml": STUDY_HEAD.format(tiers="persona").replace(
            "[simulate]", f'prompt_files = {{ persona = "{folder}/tpl-persona.txt" }}\n[simulate]'
        )
        + elections,
    }
    for name, text in studies.items():
        (folder / name).write_text(text)
    (folder / "targets-sex.csv").write_text("variable,level,share\nsex,Male,0.5\nsex,Female,0.5\n")


def _weights_cases(command: str, base: list[str]) -> list[tuple[str, list[str]]]:
    """One case per kind of unusable weights file."""
    kinds = ("nan", "str", "zero", "neg", "inf", "other", "twice")
    return [(f"{command}-weights-{k}", [*base, "--weights", f"{{d}}/w-{k}.parquet"]) for k in kinds]


CALIBRATE = [
    "calibrate",
    "--personas",
    "{d}/population.parquet",
    "--targets",
    "csv:{d}/targets-sex.csv",
]
CROSSTAB = [
    "crosstab",
    "--responses",
    "{d}/responses.parquet",
    "--by",
    "sex",
    "--persons",
    "{d}/population.parquet",
    "--n-boot",
    "0",
]
SCORE = [
    "score",
    "--responses",
    "{d}/responses.parquet",
    "--truth",
    "elections",
    "--persons",
    "{d}/population.parquet",
    "--n-boot",
    "0",
]
TB_EXPORT = ["testbed", "export", "--include-unverified"]
TB_EVAL = ["testbed", "eval", "--personas", "{d}/persona-fields.parquet", "--no-cache"]
SIMULATE_S = ["simulate", "--personas", "{d}/personas.parquet", "--simulator", "s"]
OTHER = ["--survey", "{d}/other.yaml"]

#: Resuming a parts folder with other options than its rows were made with.
RESUME: list[tuple[str, list[str]]] = [
    ("simulate-resume-permute", [*SIMULATE_S, *OTHER, "--out", "{d}/made-resp", "--permute"]),
    (
        "simulate-resume-estimator",
        [*SIMULATE_S, *OTHER, "--out", "{d}/made-resp", "--estimator", "sample"],
    ),
    (
        "simulate-resume-temperature",
        [
            *SIMULATE_S,
            *OTHER,
            "--out",
            "{d}/made-sample",
            "--estimator",
            "sample",
            "--temperature",
            "0.5",
        ],
    ),
    (
        "simulate-resume-changed-persona-text",
        [
            *["simulate", "--personas", "{d}/personas-changed.parquet", "--simulator", "s"],
            *[*OTHER, "--out", "{d}/made-resp"],
        ],
    ),
    (
        "simulate-resume-changed-question",
        [*SIMULATE_S, "--survey", "{d}/other-changed.yaml", "--out", "{d}/made-resp"],
    ),
    (
        "simulate-resume-attributes",
        [
            "simulate",
            "--population",
            "{d}/population.parquet",
            "--attributes",
            "age,sex",
            "--simulator",
            "s",
            *OTHER,
            "--out",
            "{d}/made-pop",
        ],
    ),
    (
        "personas-resume-attributes",
        [
            "personas",
            "--population",
            "{d}/population.parquet",
            "--tiers",
            "meta",
            "--attributes",
            "age,sex",
            "--out",
            "{d}/made-pers",
        ],
    ),
]

#: Issue 20 (hardening, round two): §1 files destroyed, §2 silent wrong answers, §3 tracebacks.
CASES_20: list[tuple[str, list[str]]] = [
    # §1 nothing a user has is ever destroyed
    (
        "testbed-export-hf-onto-its-pairs",
        [*TB_EXPORT, "--pairs", "{d}/tb/pairs.parquet", "--format", "hf", "--out", "{d}/tb"],
    ),
    (
        "testbed-export-trl-existing-split",
        [*TB_EXPORT, "--pairs", "{d}/tb/pairs.parquet", "--out", "{d}/tb"],
    ),
    ("calibrate-out-is-personas", [*CALIBRATE, "--out", "{d}/population.parquet"]),
    ("crosstab-out-is-responses", [*CROSSTAB, "--out", "{d}/responses.parquet"]),
    (
        "crosstab-out-is-weights",
        [*CROSSTAB, "--weights", "{d}/w-ok.parquet", "--out", "{d}/w-ok.parquet"],
    ),
    (
        "calibrate-zero-row-pool",
        [*CALIBRATE[:2], "{d}/empty.parquet", *CALIBRATE[3:], "--out", "{out}"],
    ),
    (
        "calibrate-group-absent",
        [*CALIBRATE[:4], "csv:{d}/targets-absent.csv", "--by", "state", "--out", "{out}"],
    ),
    (
        "export-overwrite-onto-its-input",
        ["export", "--personas", "{d}/exp", "--out", "{d}/exp", "--overwrite"],
    ),
    (
        "export-overwrite-out-dot",
        ["export", "--personas", "{d}/personas.parquet", "--out", ".", "--overwrite"],
    ),
    (
        "calibrate-diagnostics-is-personas",
        [*CALIBRATE, "--out", "{d}/w.parquet", "--diagnostics", "{d}/population.parquet"],
    ),
    # §2 no silent wrong answer
    *_weights_cases("crosstab", [*CROSSTAB, "--out", "{out}"]),
    *_weights_cases("score", [*SCORE, "--out", "{out}"]),
    ("score-probs-sum-10", [*SCORE[:2], "{d}/probs-5-5.parquet", *SCORE[3:], "--out", "{out}"]),
    ("score-duplicate-answers", [*SCORE[:2], "{d}/dup", *SCORE[3:], "--out", "{out}"]),
    (
        "testbed-export-null-chosen",
        [*TB_EXPORT, "--pairs", "{d}/null-chosen.parquet", "--out", "{d}/trl"],
    ),
    (
        "calibrate-one-person-id",
        [*CALIBRATE[:2], "{d}/one-id.parquet", *CALIBRATE[3:], "--out", "{out}"],
    ),
    (
        "calibrate-zero-base-weights",
        [*CALIBRATE[:2], "{d}/zero-weights.parquet", *CALIBRATE[3:], "--out", "{out}"],
    ),
    (
        "export-personas-are-responses",
        ["export", "--personas", "{d}/responses.parquet", "--out", "{d}/exported"],
    ),
    ("crosstab-other-survey", [*CROSSTAB, "--survey", "{d}/other.yaml", "--out", "{out}"]),
    ("calibrate-out-csv", [*CALIBRATE, "--out", "{d}/w.csv"]),
    ("crosstab-out-csv", [*CROSSTAB, "--out", "{d}/c.csv"]),
    *RESUME,
    # §3 one line, early
    (
        "calibrate-targets-header-only",
        [*CALIBRATE[:4], "csv:{d}/targets-header.csv", "--out", "{out}"],
    ),
    ("calibrate-out-a-folder", [*CALIBRATE, "--out", "{d}/folder-out"]),
    ("calibrate-out-read-only", [*CALIBRATE, "--out", "/proc/w.parquet"]),
    ("calibrate-out-under-a-file", [*CALIBRATE, "--out", "{out}/w.parquet"]),
    (
        "calibrate-unbounded",
        [*CALIBRATE, "--max-iter", "100000000", "--tol", "1e-300", "--out", "{out}"],
    ),
    ("crosstab-out-read-only", [*CROSSTAB, "--out", "/proc/c.parquet"]),
    ("crosstab-out-a-folder", [*CROSSTAB, "--out", "{d}/folder-out"]),
    (
        "testbed-prompts-empty-csv",
        ["testbed", "prompts", "--prompts", "{d}/empty-prompts.csv", "--out", "{out}"],
    ),
    (
        "testbed-prompts-yaml-mapping",
        ["testbed", "prompts", "--prompts", "{d}/mapping.yaml", "--out", "{out}"],
    ),
    *[
        (
            f"testbed-pairs-templates-{kind}",
            [
                *["testbed", "pairs", "--personas", "{d}/persona-tier.parquet"],
                *["--per-persona", "1", "--held-out", "0", "--no-cache"],
                *["--templates", f"{{d}}/tpl-{kind}.yaml", "--out", "{d}/new-pairs.parquet"],
            ],
        )
        for kind in ("placeholder", "brace")
    ],
    (
        "testbed-pairs-unreachable-model",
        [
            *["testbed", "pairs", "--personas", "{d}/persona-tier.parquet", "--no-cache"],
            *["--per-persona", "1", "--held-out", "0", "--out", "{d}/new-pairs.parquet"],
            *["--model", "openai:m@http://127.0.0.1:{port}/v1"],
        ],
    ),
    *[
        (
            f"simulate-ray-{name}",
            [
                *["simulate", "--population", "{d}/population.parquet", "--survey", "elections"],
                *["--executor", "ray", "--ray-address", address, "--out", "{d}/ray-out"],
            ],
        )
        for name, address in (
            ("unreachable", "10.255.255.1:6379"),
            ("closed-port", "127.0.0.1:{port}"),
            ("client-closed-port", "ray://127.0.0.1:{port}"),
            ("not-a-port", "127.0.0.1:gcs"),
        )
    ],
    ("run-ray-unreachable", ["run", "{d}/study-ray.toml", "--out", "{d}/run"]),
    ("score-probs-as-text", [*SCORE[:2], "{d}/probs-text.parquet", *SCORE[3:], "--out", "{out}"]),
    (
        "run-calibration-targets-file",
        ["run", "{d}/study-calibration-targets.toml", "--out", "{d}/run"],
    ),
    (
        "run-truth-options-not-the-survey's",
        ["run", "{d}/study-truth-options.toml", "--out", "{d}/run"],
    ),
    ("run-testbed-prompts-mapping", ["run", "{d}/study-testbed-prompts.toml", "--out", "{d}/run"]),
    ("run-testbed-humans-missing", ["run", "{d}/study-testbed-humans.toml", "--out", "{d}/run"]),
    *[
        (f"run-{name}", ["run", f"{{d}}/study-{name}.toml", "--out", "{d}/run"])
        for name in (
            "testbed-humans-columns",
            "testbed-humans-banana",
            "testbed-loo-attribute",
            "testbed-rater",
            "personas-template",
        )
    ],
]
"""Cases of issue 20 (the table in its closing note counts these)."""

CASES_21: list[tuple[str, list[str]]] = [
    ("run-testbed-protocol", ["run", "{d}/study-testbed-protocol.toml", "--out", "{d}/run"]),
    ("run-testbed-one-rater", ["run", "{d}/study-testbed-one-rater.toml", "--out", "{d}/run"]),
    *[
        (f"testbed-eval-{name}", [*TB_EVAL, *extra, "--out", "{out}"])
        for name, extra in (
            ("unknown-mode", ["--modes", "persona,chain_of_thougth"]),
            ("k-zero", ["--k", "0"]),
            ("temperature-zero", ["--k", "4", "--temperature", "0"]),
            ("by-unknown-attribute", ["--by", "sex,religon"]),
            ("where-malformed", ["--where", "sex"]),
            ("where-unknown-attribute", ["--where", "religion=None"]),
            ("where-unknown-value", ["--where", "sex=Other"]),
            ("where-no-intersection", ["--where", "sex=Female", "--where", "race=White"]),
        )
    ],
    (
        "testbed-eval-summary-onto-prompts",
        [*TB_EVAL, "--prompts", "{d}/ev_summary.csv", "--out", "{d}/ev.parquet"],
    ),
]
"""Cases of issue 21: the study's testbed stage (its protocol, its raters); `testbed eval`'s
modes, samples and persona groups (§5)."""


# (case id, arguments; {d} is the case folder, {out} the guarded output file, {port} a closed port)
CASES: list[tuple[str, list[str]]] = [
    # ---- the command line itself
    ("unknown-command", ["simulat"]),
    ("unknown-option", ["simulate", "--bogus", "--survey", "elections"]),
    ("missing-required-option", ["score", "--truth", "elections", "--out", "{out}"]),
    (
        "bad-choice-value",
        ["simulate", "--survey", "elections", "--estimator", "guess", "--out", "{out}"],
    ),
    ("out-of-range-int", ["simulate", "--survey", "elections", "--samples", "0", "--out", "{out}"]),
    # ---- llm, smoke: backend specs and options
    ("smoke-unknown-backend", ["smoke", "-m", "lamacpp", "--no-cache"]),
    ("smoke-empty-gguf-path", ["smoke", "-m", "llamacpp:", "--no-cache"]),
    ("smoke-missing-gguf", ["smoke", "-m", "llamacpp:{d}/missing.gguf", "--no-cache"]),
    ("smoke-empty-model", ["smoke", "-m", "openai:", "--no-cache"]),
    ("smoke-url-no-scheme", ["smoke", "-m", "openai:m@ftp//nowhere", "--no-cache"]),
    ("smoke-url-bad-port", ["smoke", "-m", "openai:m@http://127.0.0.1:99999/v1", "--no-cache"]),
    ("smoke-url-empty", ["smoke", "-m", "openai:m@", "--no-cache"]),
    ("smoke-unknown-option", ["smoke", "-o", "n_ctxx=4096", "--no-cache"]),
    ("smoke-option-out-of-range", ["smoke", "-o", "n_ctx=1", "--no-cache"]),
    ("smoke-option-not-pair", ["smoke", "-o", "n_ctx", "--no-cache"]),
    ("smoke-unreachable", ["smoke", "-m", "openai:m@http://127.0.0.1:{port}/v1", "--no-cache"]),
    ("llm-chat-no-prompt", ["llm", "chat", "--no-cache"]),
    ("llm-chat-missing-schema", ["llm", "chat", "hi", "--schema", "{d}/none.json", "--no-cache"]),
    (
        "llm-chat-schema-not-json",
        ["llm", "chat", "hi", "--schema", "{d}/notjson.json", "--no-cache"],
    ),
    ("llm-chat-bad-temperature", ["llm", "chat", "hi", "--temperature", "9", "--no-cache"]),
    ("llm-choice-one-answer", ["llm", "choice", "Tea?", "-a", "Yes", "--no-cache"]),
    # ---- population
    ("population-unknown-state", ["population", "--states", "XX", "--out", "{out}"]),
    (
        "population-zero-per-state",
        ["population", "--states", "WY", "--per-state", "0", "--out", "{out}"],
    ),
    ("population-out-unwritable", ["population", "--states", "WY", "--out", "/proc/p.parquet"]),
    (
        "population-missing-pums",
        ["population", "--states", "WY", "--pums", "{d}/none.csv", "--out", "{out}"],
    ),
    # ---- personas
    (
        "personas-missing-population",
        ["personas", "--population", "{d}/none.parquet", "--out", "{out}", "--no-cache"],
    ),
    (
        "personas-population-not-a-table",
        ["personas", "--population", "{d}/broken.yaml", "--out", "{out}", "--no-cache"],
    ),
    (
        "personas-unknown-tier",
        [
            "personas",
            "--population",
            "{d}/population.parquet",
            "--tiers",
            "metta",
            "--out",
            "{out}",
            "--no-cache",
        ],
    ),
    (
        "personas-missing-prompt-file",
        [
            "personas",
            "--population",
            "{d}/population.parquet",
            "--prompt-file",
            "{d}/none.txt",
            "--out",
            "{out}",
            "--no-cache",
        ],
    ),
    (
        "personas-zero-rows",
        [
            "personas",
            "--population",
            "{d}/empty.parquet",
            "--tiers",
            "meta",
            "--out",
            "{out}",
            "--no-cache",
        ],
    ),
    (
        "personas-out-is-population",
        ["personas", "--population", "{out}", "--tiers", "meta", "--no-cache", "--out", "{out}"],
    ),
    (
        "personas-out-under-a-file",
        [
            "personas",
            "--population",
            "{d}/population.parquet",
            "--tiers",
            "meta",
            "--out",
            "{out}/p.parquet",
            "--no-cache",
        ],
    ),
    (
        "personas-max-runs-zero",
        [
            "personas",
            "--population",
            "{d}/population.parquet",
            "--max-runs",
            "0",
            "--out",
            "{d}/p",
            "--no-cache",
        ],
    ),
    # ---- simulate
    (
        "simulate-out-unwritable",
        [
            "simulate",
            "--personas",
            "{d}/personas.parquet",
            "--survey",
            "elections",
            "--out",
            "/sys/r.parquet",
            "--no-cache",
        ],
    ),
    (
        "simulate-out-is-personas",
        [
            "simulate",
            "--personas",
            "{out}",
            "--survey",
            "elections",
            "--out",
            "{out}",
            "--no-cache",
        ],
    ),
    (
        "simulate-out-is-a-file",
        [
            "simulate",
            "--personas",
            "{d}/personas.parquet",
            "--survey",
            "elections",
            "--out",
            "{out}",
            "--no-cache",
        ],
    ),
    (
        "simulate-unknown-survey",
        [
            "simulate",
            "--personas",
            "{d}/personas.parquet",
            "--survey",
            "electons",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-survey-booleans",
        [
            "simulate",
            "--personas",
            "{d}/personas.parquet",
            "--survey",
            "{d}/bools.yaml",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-survey-typo",
        [
            "simulate",
            "--personas",
            "{d}/personas.parquet",
            "--survey",
            "{d}/typo.yaml",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-survey-syntax",
        [
            "simulate",
            "--personas",
            "{d}/personas.parquet",
            "--survey",
            "{d}/broken.yaml",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-survey-too-big",
        [
            "simulate",
            "--personas",
            "{d}/personas.parquet",
            "--survey",
            "{d}/big.yaml",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-missing-personas",
        [
            "simulate",
            "--personas",
            "{d}/none.parquet",
            "--survey",
            "elections",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-personas-no-id",
        [
            "simulate",
            "--personas",
            "{d}/no-id.parquet",
            "--survey",
            "elections",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-text-integers",
        [
            "simulate",
            "--personas",
            "{d}/int-text.parquet",
            "--survey",
            "elections",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-text-empty",
        [
            "simulate",
            "--personas",
            "{d}/empty-text.parquet",
            "--survey",
            "elections",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-person-twice",
        [
            "simulate",
            "--personas",
            "{d}/twice.parquet",
            "--survey",
            "elections",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-no-personas",
        ["simulate", "--survey", "elections", "--out", "{d}/resp", "--no-cache"],
    ),
    (
        "simulate-both-inputs",
        [
            "simulate",
            "--personas",
            "{d}/personas.parquet",
            "--population",
            "{d}/population.parquet",
            "--survey",
            "elections",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-unknown-backend",
        [
            "simulate",
            "--personas",
            "{d}/personas.parquet",
            "--survey",
            "elections",
            "-m",
            "gpt",
            "--out",
            "{d}/resp",
            "--no-cache",
        ],
    ),
    (
        "simulate-unreachable",
        [
            "simulate",
            "--personas",
            "{d}/personas.parquet",
            "--survey",
            "elections",
            "-m",
            "openai:m@http://127.0.0.1:{port}/v1",
            "--out",
            "{d}/new.parquet",
            "--no-cache",
        ],
    ),
    # ---- score
    (
        "score-missing-responses",
        ["score", "--responses", "{d}/none.parquet", "--truth", "elections", "--out", "{out}"],
    ),
    (
        "score-responses-not-responses",
        ["score", "--responses", "{d}/personas.parquet", "--truth", "elections", "--out", "{out}"],
    ),
    (
        "score-responses-csv-not-responses",
        ["score", "--responses", "{d}/table.csv", "--truth", "elections", "--out", "{out}"],
    ),
    (
        "score-out-is-responses",
        ["score", "--responses", "{out}", "--truth", "elections", "--out", "{out}"],
    ),
    (
        "score-out-is-persons",
        [
            "score",
            "--responses",
            "{d}/responses.parquet",
            "--persons",
            "{out}",
            "--truth",
            "elections",
            "--out",
            "{out}",
        ],
    ),
    (
        "score-out-unwritable",
        [
            "score",
            "--responses",
            "{d}/responses.parquet",
            "--truth",
            "elections",
            "--out",
            "/proc/none/s.parquet",
        ],
    ),
    (
        "score-unknown-truth",
        ["score", "--responses", "{d}/responses.parquet", "--truth", "electons", "--out", "{out}"],
    ),
    (
        "score-csv-truth-without-survey",
        [
            "score",
            "--responses",
            "{d}/responses.parquet",
            "--truth",
            "csv:{d}/table.csv",
            "--out",
            "{out}",
        ],
    ),
    (
        "score-persons-without-id",
        [
            "score",
            "--responses",
            "{d}/responses.parquet",
            "--truth",
            "elections",
            "--persons",
            "{d}/no-id.parquet",
            "--out",
            "{out}",
        ],
    ),
    *[
        (
            f"score-microdata-{name}",
            [
                "score",
                "--responses",
                "{d}/responses.parquet",
                "--truth",
                f"microdata:{{d}}/md-{name}.yaml",
                "--out",
                "{out}",
            ],
        )
        for name in ("unmapped-code", "negative-weight", "missing-column", "no-persons")
    ],
    (
        "score-microdata-missing-mapping",
        [
            "score",
            "--responses",
            "{d}/responses.parquet",
            "--truth",
            "microdata:{d}/none.yaml",
            "--out",
            "{out}",
        ],
    ),
    (
        "score-negative-boot",
        [
            "score",
            "--responses",
            "{d}/responses.parquet",
            "--truth",
            "elections",
            "--n-boot",
            "-1",
            "--out",
            "{out}",
        ],
    ),
    # ---- run
    ("run-missing-study", ["run", "{d}/none.toml", "--out", "{d}/run"]),
    ("run-unknown-study-key", ["run", "{d}/study-typo.toml", "--out", "{d}/run"]),
    ("run-study-syntax", ["run", "{d}/study-syntax.toml", "--out", "{d}/run"]),
    (
        "run-unused-unknown-generator",
        ["run", "{d}/study-unused-generator.toml", "--out", "{d}/run"],
    ),
    ("run-backend-bad-port", ["run", "{d}/study-bad-url.toml", "--out", "{d}/run"]),
    ("run-out-is-a-file", ["run", "tiny", "--out", "{out}"]),
    ("run-out-unwritable", ["run", "tiny", "--out", "/proc/personasim-run"]),
    ("run-out-under-a-file", ["run", "tiny", "--out", "{out}/run"]),
    # ---- testbed
    (
        "testbed-prompts-missing",
        ["testbed", "prompts", "--prompts", "{d}/none.yaml", "--out", "{out}"],
    ),
    ("testbed-prompts-out-unwritable", ["testbed", "prompts", "--out", "/proc/p.parquet"]),
    (
        "testbed-pairs-missing-personas",
        ["testbed", "pairs", "--personas", "{d}/none.parquet", "--out", "{out}", "--no-cache"],
    ),
    (
        "testbed-pairs-no-persona-tier",
        ["testbed", "pairs", "--personas", "{d}/personas.parquet", "--out", "{out}", "--no-cache"],
    ),
    (
        "testbed-eval-out-is-personas",
        ["testbed", "eval", "--personas", "{out}", "--out", "{out}", "--no-cache"],
    ),
    (
        "testbed-export-missing-pairs",
        ["testbed", "export", "--pairs", "{d}/none.parquet", "--out", "{d}/export"],
    ),
    (
        "testbed-loo-missing-personas",
        ["testbed", "loo", "--personas", "{d}/none.parquet", "--out", "{out}", "--no-cache"],
    ),
    (
        "testbed-loo-choice-missing-personas",
        [
            "testbed",
            "loo",
            "--protocol",
            "choice",
            "--personas",
            "{d}/none.parquet",
            "--out",
            "{out}",
            "--no-cache",
        ],
    ),
    (
        "testbed-loo-out-is-personas",
        ["testbed", "loo", "--personas", "{out}", "--out", "{out}", "--no-cache"],
    ),
    (
        "testbed-agreement-missing-items",
        [
            "testbed",
            "agreement",
            "--personas",
            "{d}/personas.parquet",
            "--items",
            "pairs:{d}/none.parquet",
            "--out",
            "{d}/agreement",
            "--no-cache",
        ],
    ),
    (
        "testbed-agreement-one-rater",
        [
            "testbed",
            "agreement",
            "--personas",
            "{d}/persona-tier.parquet",
            "--out",
            "{d}/agreement",
            "--no-cache",
        ],
    ),
    (
        "testbed-annotate-missing-pairs",
        [
            "testbed",
            "annotate",
            "--items",
            "pairs:{d}/none.parquet",
            "--roster",
            "{d}/table.csv",
            "--out",
            "{d}/annotation",
        ],
    ),
    (
        "testbed-annotate-prompt-items",
        [
            "testbed",
            "annotate",
            "--items",
            "builtin",
            "--roster",
            "{d}/table.csv",
            "--out",
            "{d}/annotation",
        ],
    ),
    (
        "testbed-annotate-bad-roster",
        [
            "testbed",
            "annotate",
            "--items",
            "pairs:{d}/pairs.parquet",
            "--roster",
            "{d}/table.csv",
            "--out",
            "{d}/annotation",
        ],
    ),
    # ---- calibrate, crosstab, export
    (
        "calibrate-missing-personas",
        ["calibrate", "--personas", "{d}/none.parquet", "--targets", "party", "--out", "{out}"],
    ),
    (
        "calibrate-unknown-target",
        [
            "calibrate",
            "--personas",
            "{d}/population.parquet",
            "--targets",
            "partty",
            "--out",
            "{out}",
        ],
    ),
    (
        "crosstab-unknown-attribute",
        [
            "crosstab",
            "--responses",
            "{d}/responses.parquet",
            "--by",
            "nosuch",
            "--persons",
            "{d}/population.parquet",
            "--out",
            "{out}",
        ],
    ),
    (
        "export-missing-personas",
        ["export", "--personas", "{d}/none.parquet", "--format", "hf", "--out", "{d}/exported"],
    ),
    ("export-parts-clash", ["export", "--personas", "{d}/clash", "--out", "{d}/exported"]),
    (
        "simulate-parts-clash",
        [
            "simulate",
            "--personas",
            "{d}/clash",
            "--survey",
            "elections",
            "--no-cache",
            "--out",
            "{d}/resp",
        ],
    ),
    *CASES_20,
    *CASES_21,
]

#: Cases that also run through a real subprocess (entry point, fresh interpreter).
SUBPROCESS = (
    "unknown-option",
    "smoke-url-bad-port",
    "simulate-survey-booleans",
    "score-responses-not-responses",
    "smoke-unreachable",
)

#: Environment every case runs with (the size limit under 1.2 MB for ``big.yaml``).
ENV = {"PERSONASIM_MAX_SURVEY_MB": "1", "PERSONASIM_THREADS": "1"}


def _argv(args: list[str], folder: Path, port: int) -> list[str]:
    return [a.format(d=folder, out=folder / GUARD, port=port) for a in args]


def _prepared(tmp_path: Path) -> tuple[Path, bytes]:
    _frames(tmp_path)
    guard = tmp_path / GUARD
    PERSONAS.assign(note="written before the bad command").to_parquet(guard, index=False)
    return guard, guard.read_bytes()


def _snapshot(folder: Path) -> dict[Path, bytes]:
    """Every file under ``folder`` (but the read-only folder's) with its bytes."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _check(
    code: int, stderr: str, guard: Path, before: bytes, files: dict[Path, bytes] | None = None
) -> None:
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    assert not re.search(r"\bnp\.\w+\(", stderr), "a numpy repr leaked into the message"
    assert guard.read_bytes() == before, "the pre-existing output file changed"
    changed = [p for p, data in (files or {}).items() if not p.is_file() or p.read_bytes() != data]
    assert not changed, f"pre-existing files changed or removed: {changed}"
    leftovers = [p for p in guard.parent.rglob("*.tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


@pytest.mark.parametrize(("case", "args"), CASES, ids=[c for c, _ in CASES])
def test_bad_input_in_process(
    case: str,
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERSONASIM_TRACEBACK", raising=False)
    guard, before = _prepared(tmp_path)
    files = _snapshot(tmp_path)
    code = main(_argv(args, tmp_path, free_port()))
    _check(code, capsys.readouterr().err, guard, before, files)


@pytest.mark.slow
@pytest.mark.parametrize("case", SUBPROCESS)
def test_bad_input_in_a_subprocess(case: str, tmp_path: Path) -> None:
    args = dict(CASES)[case]
    guard, before = _prepared(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PERSONASIM_TRACEBACK"} | ENV
    done = subprocess.run(
        [str(ENTRY), *_argv(args, tmp_path, free_port())],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    _check(done.returncode, done.stderr, guard, before)


def test_every_command_has_bad_input_cases() -> None:
    from personasim.cli.main import SUBCOMMANDS

    covered = {args[0] for _, args in CASES}
    assert set(SUBCOMMANDS) <= covered, f"no bad-input case for {set(SUBCOMMANDS) - covered}"
