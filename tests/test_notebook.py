"""notebooks/colab.ipynb runs end to end on its demo parameters (offline, CPU, a few steps), and run
again on the same output folder it resumes the runs there instead of starting over."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mtl.training.checkpoint import load_training_state

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "colab.ipynb"
DEMO_STEPS = 300  # configs/demo.yaml's train.max_steps


def execute(tmp_path: Path, fraction: float) -> Any:
    """The notebook executed with the demo parameters and ``FRACTION``, runs under ``tmp_path/runs``."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    # what papermill does: a cell after the parameters cell overrides them
    injected = (
        f"DEMO = True\nREPO_DIR = {str(ROOT)!r}\nOUTPUT = {str(tmp_path / 'runs')!r}\nFRACTION = {fraction}\n"
    )
    nb.cells.insert(params[0] + 1, nbformat.v4.new_code_cell(injected))
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return nb


def printed(nb: Any) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.slow
def test_colab_notebook_runs_on_the_demo_parameters_and_resumes_its_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = execute(tmp_path, 0.05)
    assert load_training_state(runs / "demo" / "last").step == round(DEMO_STEPS * 0.05)
    assert (runs / "demo" / "scoreboard.md").is_file()
    assert (runs / "demo-finetune-ynat" / "last").is_dir()
    assert "resuming" not in printed(first)
    lines = (runs / "predictions" / "ynat.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 14 and all("label" in json.loads(line) for line in lines)
    result = next(o for o in first.cells[-2].outputs if o.output_type == "execute_result")
    assert "macro_f1" in result.data["text/plain"]

    # The same folder again, with twice the fraction: both runs are resumed, the joint one trains on.
    second = execute(tmp_path, 0.1)
    text = printed(second)
    assert f"resuming the run in {runs / 'demo'}" in text
    assert f"resuming the run in {runs / 'demo-finetune-ynat'}" in text
    assert load_training_state(runs / "demo" / "last").step == round(DEMO_STEPS * 0.1)
    assert len(list((runs / "demo" / "tensorboard").iterdir())) == 2  # the run and its resume
