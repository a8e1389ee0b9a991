"""Config loading: YAML with a safe loader, overrides, and clear errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtl.config import config_from_dict, load_config
from mtl.errors import KlueInputError

CONFIGS = Path(__file__).parent.parent / "configs"

# KLUE-baseline's max sequence lengths (its run_all.sh), written out here independently of the code.
BASELINE_MAX_LENGTH = {
    "ynat": 128,
    "nli": 128,
    "sts": 128,
    "ner": 510,
    "re": 256,
    "dp": 256,
    "mrc": 510,
    "wos": 510,
}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.tasks
    if path.name.startswith("klue_"):
        assert set(cfg.tasks) == set(BASELINE_MAX_LENGTH)
        assert cfg.encoder.name.startswith("klue/roberta-") and not cfg.encoder.random_init
        for name in cfg.tasks:
            assert cfg.task_settings(name).max_length == BASELINE_MAX_LENGTH[name]


def test_demo_is_offline_and_has_all_eight_tasks() -> None:
    cfg = load_config(CONFIGS / "demo.yaml")
    assert cfg.encoder.tokenizer == "offline" and cfg.encoder.random_init
    assert len(cfg.tasks) == 8 and cfg.data_dir == "@samples"


def test_overrides_set_nested_values_and_parse_types() -> None:
    cfg = load_config(
        CONFIGS / "demo.yaml",
        ["train.max_steps=7", "train.learning_rate=3e-5", "sampler.cap=100", "tasks.ner.batch_size=2"],
    )
    assert cfg.train.max_steps == 7 and cfg.train.learning_rate == pytest.approx(3e-5)
    assert cfg.sampler.cap == 100 and cfg.tasks["ner"].batch_size == 2


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.max_stpes=3", "train.max_stpes"),
        ("tasks.ner.batchsize=3", "tasks.ner.batchsize"),
        ("tasks.pos.train=x", "tasks.pos"),
        ("train.max_steps=many", "expected an integer"),
        ("train.engine=jax", "train.engine"),
        ("sampler.temperature=0", "sampler.temperature"),
        ("tasks.ner.max_length=4096", "tasks.ner.max_length"),
        ("train.select_metric=pos.acc", "train.select_metric"),
        ("novalue", "key=value"),
    ],
)
def test_bad_config_values_are_errors_naming_the_key(override: str, needle: str) -> None:
    with pytest.raises(KlueInputError) as err:
        load_config(CONFIGS / "demo.yaml", [override])
    assert needle in str(err.value)


def test_bad_yaml_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  max_steps: [1,\n", encoding="utf-8")
    with pytest.raises(KlueInputError) as err:
        load_config(bad)
    assert str(bad) in str(err.value) and "line" in str(err.value)
    with pytest.raises(KlueInputError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_yaml_is_read_with_a_safe_loader(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("output_dir: !!python/object/apply:os.system ['echo pwned']\n", encoding="utf-8")
    with pytest.raises(KlueInputError, match="invalid YAML"):
        load_config(evil)


def test_round_trip_through_plain_data() -> None:
    cfg = load_config(CONFIGS / "demo.yaml")
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("override", "typed", "closest"),
    [
        ("train.max_step=50", "train.max_step", "train.max_steps"),
        ("tasks.ynat.batchsize=4", "tasks.ynat.batchsize", "tasks.ynat.batch_size"),
        ("sampler.temprature=1", "sampler.temprature", "sampler.temperature"),
    ],
)
def test_an_override_typo_is_blamed_on_the_command_line_with_the_closest_key(
    override: str, typed: str, closest: str
) -> None:
    demo = Path(__file__).parent.parent / "configs" / "demo.yaml"
    with pytest.raises(KlueInputError) as err:
        load_config(demo, [override])
    message = str(err.value)
    assert "demo.yaml" not in message and "command line" in message and override in message
    assert f"unknown config key `{typed}`; did you mean `{closest}`?" in message


def test_overrides_below_a_mapping_key_are_free() -> None:
    demo = Path(__file__).parent.parent / "configs" / "demo.yaml"
    cfg = load_config(demo, ["encoder.architecture.num_hidden_layers=1", "tasks.ynat.batch_size=4"])
    assert cfg.encoder.architecture["num_hidden_layers"] == 1 and cfg.tasks["ynat"].batch_size == 4
