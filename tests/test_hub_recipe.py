"""The hub recipe as written: configs/klue_all.yaml with only encoder.name and the data pointed at
local stand-ins (a tiny RobertaForMaskedLM saved like klue/roberta-base, hub-schema parquet and
save_to_disk exports of the bundled samples), no WoS ontology: both engines train all eight tasks;
predict -> score then works on official and hub-format dev files of every task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import hub_rows, standin_mlm_folder

from mtl.cli.main import main
from mtl.samples import sample_path
from mtl.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")
PARQUET = {"ynat", "ner", "dp", "wos"}  # the others as save_to_disk folders
STEPS = 72  # the epoch targets of the recipe need 71 steps on the samples


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    root = tmp_path_factory.mktemp("hub")
    chars: set[str] = set()
    files: dict[str, dict[str, str]] = {}
    for task in TASKS:
        files[task] = {}
        for split in ("train", "dev"):
            records = get_task(task).read(sample_path(task, split))
            for r in records:
                chars.update("".join(get_task(task).record_texts(r)))
            ds = datasets.Dataset.from_list(hub_rows(task, records))
            name = "validation" if split == "dev" else split
            if task in PARQUET:
                path = root / f"{task}_{name}.parquet"
                ds.to_parquet(str(path))
            else:
                path = root / f"{task}_{name}"
                ds.save_to_disk(str(path))
            files[task][split] = str(path)
    model = standin_mlm_folder(
        root / "roberta-base", tokens=sorted(c for c in chars if not c.isspace()), max_positions=514
    )
    return {"root": root, "model": str(model), "files": files}


def recipe(standins: dict[str, Any], out: Path) -> Path:
    """configs/klue_all.yaml with encoder.name and every train/dev pointed at the stand-ins."""
    data = yaml.safe_load((ROOT / "configs" / "klue_all.yaml").read_text(encoding="utf-8"))
    assert "ontology" not in data["tasks"]["wos"]
    data["encoder"]["name"] = standins["model"]
    for task, spec in data["tasks"].items():
        spec["train"] = standins["files"][task]["train"]
        spec["dev"] = standins["files"][task]["dev"]
    path = out / "klue_all.yaml"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["loop", "trainer"])
def test_hub_recipe_trains_all_tasks_then_predict_and_score_work_on_both_formats(
    standins: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    config = recipe(standins, tmp_path)
    out = tmp_path / "run"
    overrides = [f"train.max_steps={STEPS}", "train.log_every=10", f"train.engine={engine}"]
    status, stdout, err = cli(["train", "--config", str(config), "--output", str(out), *overrides], capsys)
    assert status == 0, err
    board = json.loads((out / "scoreboard.json").read_text(encoding="utf-8"))
    assert [row["task"] for row in board["rows"]] == list(TASKS)
    # WoS learned its slots from the training states, not from any ontology file
    wos = json.loads((out / "last" / "tasks.json").read_text(encoding="utf-8"))["wos"]
    assert wos["slots"] and len(wos["slots"]) < 45  # the sample ontology has 45 slots
    assert f"tensorboard --logdir {out / 'tensorboard'}" in stdout
    if engine == "trainer":
        return  # predict/score do not depend on the engine: checked once
    for task in TASKS:
        for fmt, gold in (
            ("official", str(sample_path(task, "dev"))),
            ("hub", standins["files"][task]["dev"]),
        ):
            pred = tmp_path / "pred" / f"{task}-{fmt}.jsonl"
            status, _, err = cli(
                [
                    "predict",
                    "--checkpoint",
                    str(out / "last"),
                    "--task",
                    task,
                    "--input",
                    gold,
                    "--output",
                    str(pred),
                ],
                capsys,
            )
            assert status == 0, (task, fmt, err)
            status, stdout, err = cli(["score", "--task", task, "--gold", gold, "--pred", str(pred)], capsys)
            assert status == 0, (task, fmt, err)
            metrics = json.loads(stdout)
            assert metrics["n"] == len(get_task(task).gold_units(get_task(task).read(gold)))
            assert set(metrics["metrics"]) == set(get_task(task).metric_names), (task, fmt, metrics)
