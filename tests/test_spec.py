"""Study specs as a tree: every section, backend references, survey ids, the old flat form,
"did you mean", TOML round trip, and the pre-flight check."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from personasim.cli.main import main
from personasim.core.errors import ConfigError
from personasim.spec.study import builtin_study, check_study, load_study, study_from_dict

FULL = """
name = "full"

[population]
states = ["vt", "TX"]
per_state = 4
seed = 7
min_age = 21
pums = ["psam_p50.csv"]

[personas]
tiers = ["meta", "objective", "persona"]
generators = ["writer"]
temperature = 0.5
max_attempts = 2
prompt_files = { objective = "obj.txt" }

[simulate]
simulators = ["writer", "server"]
estimator = "sample"
samples = 3
permute = true
temperature = 0.9
min_valid_mass = 0.2

[score]
n_boot = 25

[report]
title = "Full"
sample_personas = 1

[backends.writer]
spec = "llamacpp"
n_ctx = 2048

[backends.server]
spec = "openai:smollm2@http://127.0.0.1:9/v1"
max_concurrency = 2

[[surveys]]
id = "votes"
source = "elections"
max_questions = 1

[[surveys]]
id = "my-topics"
source = "topics"
truth = "csv:counts.csv"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_study(_write(tmp_path, text))
    line = caught.value.one_line()
    assert "\n" not in line
    return line


@pytest.mark.parametrize("name", ["default", "tiny"])
def test_builtin_studies_load_and_round_trip(name: str) -> None:
    spec = builtin_study(name)
    assert spec.states and spec.tiers[0] == "meta"
    assert study_from_dict(tomllib.loads(spec.to_toml())) == spec


def test_default_study_covers_the_papers_tiers_and_surveys() -> None:
    spec = builtin_study("default")
    assert len(spec.states) == 5 and spec.population.per_state == 3
    assert spec.tiers == ("meta", "objective", "subjective", "descriptive")
    assert [(e.id, e.source) for e in spec.surveys] == [
        ("elections", "elections"),
        ("topics", "topics"),
    ]
    assert spec.survey("elections").truth_spec == "elections"
    assert spec.survey("topics").truth_spec is None
    assert spec.backends["embedded"].spec == "llamacpp"
    assert spec.backends["embedded"].options == {"n_ctx": 4096}


def test_every_section_parses_and_round_trips(tmp_path: Path) -> None:
    spec = load_study(_write(tmp_path, FULL))
    assert spec.population.states == ("VT", "TX") and spec.population.min_age == 21
    assert spec.seed == 7 and spec.population.per_state == 4
    assert spec.personas.tiers == ("meta", "objective", "persona")
    assert spec.personas.max_attempts == 2 and spec.personas.temperature == 0.5
    assert spec.personas.prompt_files == {"objective": Path("obj.txt")}
    assert spec.population.pums == (Path("psam_p50.csv"),)
    assert spec.simulate.simulators == ("writer", "server")
    assert spec.simulate.estimator == "sample" and spec.simulate.samples == 3
    assert spec.simulate.permute and spec.simulate.min_valid_mass == 0.2
    assert spec.simulate.temperature == 0.9 and spec.score.n_boot == 25
    assert spec.report.title == "Full" and spec.report.sample_personas == 1
    # each backend keeps its own options: llama.cpp's n_ctx never reaches the openai backend
    assert spec.backends["writer"].options == {"n_ctx": 2048}
    assert spec.backends["server"].options == {"max_concurrency": 2}
    assert "llamacpp" not in spec.backends  # not named, so not added
    votes, topics = spec.surveys
    assert (votes.id, votes.max_questions, votes.truth_spec) == ("votes", 1, "elections")
    assert topics.truth_spec == "csv:counts.csv"
    assert study_from_dict(tomllib.loads(spec.to_toml()), "round trip") == spec


def test_defaults_name_the_embedded_model() -> None:
    spec = study_from_dict({})
    assert spec.personas.generators == ("llamacpp",) and spec.simulate.simulators == ("llamacpp",)
    assert spec.backends["llamacpp"].spec == "llamacpp"
    assert spec.simulate.min_valid_mass == 0.0


def test_unknown_backend_reference_has_did_you_mean(tmp_path: Path) -> None:
    line = _error(tmp_path, FULL.replace('generators = ["writer"]', 'generators = ["writr"]'))
    assert line.startswith(f"{tmp_path / 'study.toml'}: personas.generators[0]: unknown backend")
    assert "did you mean 'writer'?" in line
    line = _error(tmp_path, FULL.replace('"writer", "server"]', '"writer", "sever"]'))
    assert "simulate.simulators[1]: unknown backend 'sever'" in line and "'server'" in line


def test_backend_options_are_checked_against_their_own_model(tmp_path: Path) -> None:
    line = _error(tmp_path, FULL.replace("n_ctx = 2048", "n_ctxx = 2048"))
    assert "backends.writer: unknown field 'n_ctxx'" in line and "did you mean 'n_ctx'" in line
    line = _error(tmp_path, FULL.replace("max_concurrency = 2", "n_ctx = 4096"))
    assert "backends.server: unknown field 'n_ctx'" in line  # an openai option model
    line = _error(tmp_path, FULL.replace('spec = "llamacpp"', 'spec = "lamacpp"'))
    assert "backends.writer.spec: unknown backend 'lamacpp'" in line and "'llamacpp'" in line
    line = _error(tmp_path, FULL.replace("n_ctx = 2048", 'n_ctx = "big"'))
    assert "backends.writer: n_ctx:" in line


def test_survey_shorthand_derives_ids() -> None:
    spec = study_from_dict(
        {"surveys": ["elections", "opinionqa:/data/American_Trends_W26", "a/My Survey.yaml"]}
    )
    assert [e.id for e in spec.surveys] == ["elections", "american_trends_w26", "my_survey"]
    with pytest.raises(ConfigError, match="used twice"):
        study_from_dict({"surveys": ["a/my.yaml", "b/my.json"]})


def test_survey_ids_are_unique_and_well_formed(tmp_path: Path) -> None:
    twice = FULL.replace('id = "my-topics"', 'id = "votes"')
    assert "survey id 'votes' is used twice" in _error(tmp_path, twice)
    assert "must be lower case" in _error(tmp_path, FULL.replace('"my-topics"', '"My Topics"'))
    missing = FULL.replace('source = "topics"\n', "")
    assert "surveys[1].source: Field required" in _error(tmp_path, missing)


@pytest.mark.parametrize(
    ("key", "section"),
    [
        ("per_state = 2", "[population]"),
        ('tiers = ["meta"]', "[personas]"),
        ('simulators = ["llamacpp"]', "[simulate]"),
        ("n_boot = 5", "[score]"),
        ("[backend_options]\nn_ctx = 4096", "[backends.NAME]"),
        ('[truth]\n"x.yaml" = "csv:y.csv"', "[[surveys]]"),
    ],
)
def test_old_flat_form_names_the_new_section(tmp_path: Path, key: str, section: str) -> None:
    line = _error(tmp_path, f'name = "old"\n{key}\n')
    name = key.split()[0].strip("[]")
    assert f"'{name}' moved to {section}" in line
    assert line.startswith(str(tmp_path / "study.toml"))


def test_unknown_keys_keep_did_you_mean(tmp_path: Path) -> None:
    line = _error(tmp_path, "[population]\nper_stat = 2\n")
    assert "unknown field 'population.per_stat'" in line and "did you mean 'per_state'" in line
    line = _error(tmp_path, "[report]\nsample_persona = 2\n")
    assert "did you mean 'sample_personas'" in line
    line = _error(tmp_path, 'nme = "x"\n')
    assert "did you mean 'name'" in line
    line = _error(tmp_path, '[[surveys]]\nid = "a"\nsource = "topics"\ntruht = "elections"\n')
    assert "surveys[0].truht" in line and "did you mean 'truth'" in line


def test_wrong_types_and_closed_tier_set(tmp_path: Path) -> None:
    assert "population.per_state" in _error(tmp_path, '[population]\nper_state = "many"\n')
    line = _error(tmp_path, '[personas]\ntiers = ["meta", "vibes"]\n')
    assert "personas.tiers[1]" in line and "'descriptive'" in line
    assert "simulate.estimator" in _error(tmp_path, '[simulate]\nestimator = "guess"\n')


def test_bad_toml_missing_file_and_unknown_builtin(tmp_path: Path) -> None:
    assert "not valid TOML" in _error(tmp_path, "[population]\nstates = [\n")
    with pytest.raises(ConfigError, match="study file not found"):
        load_study(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as caught:
        load_study("defualt")
    assert "unknown built-in study 'defualt'" in caught.value.one_line()
    assert "did you mean 'default'" in caught.value.one_line()


def test_preflight_names_file_and_field(tmp_path: Path) -> None:
    base = '[personas]\ntiers = ["meta"]\n'
    spec = load_study(_write(tmp_path, base + '[population]\nstates = ["VT", "XX"]\n'))
    with pytest.raises(ConfigError, match=r"^s.toml: population.states: unknown state code 'XX'"):
        check_study(spec, "s.toml")
    surveys = '[[surveys]]\nid = "a"\nsource = "elections"\n[[surveys]]\nid = "b"\nsource = '
    spec = load_study(_write(tmp_path, base + surveys + f'"{tmp_path}/none.yaml"\n'))
    with pytest.raises(ConfigError) as caught:
        check_study(spec, "s.toml")
    assert caught.value.one_line().startswith("s.toml: surveys[1].source: ")
    spec = load_study(_write(tmp_path, base + surveys + '"topics"\ntruth = "cvs:x.csv"\n'))
    with pytest.raises(ConfigError) as caught:
        check_study(spec, "s.toml")
    assert caught.value.one_line().startswith("s.toml: surveys[1].truth: unknown truth source")
    spec = load_study(_write(tmp_path, FULL))
    with pytest.raises(ConfigError, match=r"^s.toml: population.pums\[0\]: psam_p50.csv"):
        check_study(spec, "s.toml")
    spec = spec.model_copy(update={"population": spec.population.model_copy(update={"pums": ()})})
    with pytest.raises(ConfigError, match=r"^s.toml: personas.prompt_files.objective: "):
        check_study(spec, "s.toml")
    check_study(builtin_study("tiny"), "builtin:tiny")  # the shipped studies pass


def test_cli_run_with_bad_study_prints_one_line(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "[population]\nper_state = 0\n")
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "population.per_state" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_cli_preflight_fails_before_the_first_stage(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, '[population]\nstates = ["ZZ"]\n[personas]\ntiers = ["meta"]\n')
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: population.states: unknown state code 'ZZ'")
    assert len(err.splitlines()) == 1 and not (tmp_path / "run").exists()


def test_calibration_takes_every_method_option_of_the_command(tmp_path: Path) -> None:
    from personasim.calibrate.options import CalibrateOptions
    from personasim.pipeline.stages.calibration import calibrate_options

    spec = load_study(_write(tmp_path, "[calibration]\ntrim_percentile = 99\nmax_iter = 50\n"))
    assert spec.calibration is not None
    assert calibrate_options(spec.calibration) == CalibrateOptions(trim_percentile=99, max_iter=50)
    assert "give trim or trim_percentile, not both" in _error(
        tmp_path, "[calibration]\ntrim = 3\ntrim_percentile = 99\n"
    )
    line = _error(tmp_path, "[calibration]\ntrim_percentil = 99\n")
    assert "calibration.trim_percentil" in line and "did you mean 'trim_percentile'" in line
