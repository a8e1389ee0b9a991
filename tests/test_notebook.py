"""notebooks/colab.ipynb runs end to end on its demo parameters (offline, CPU, a few steps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "colab.ipynb"


@pytest.mark.slow
def test_colab_notebook_runs_on_the_demo_parameters(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    # what papermill does: a cell after the parameters cell overrides them
    injected = f"DEMO = True\nREPO_DIR = {str(ROOT)!r}\nOUTPUT = {str(tmp_path / 'runs')!r}\n"
    nb.cells.insert(params[0] + 1, nbformat.v4.new_code_cell(injected))
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    runs = tmp_path / "runs"
    assert (runs / "demo" / "scoreboard.md").is_file()
    assert (runs / "demo-finetune-ynat" / "last").is_dir()
    lines = (runs / "predictions" / "ynat.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 14 and all("label" in json.loads(line) for line in lines)
    last = nb.cells[-2]  # the predict-and-score cell
    result = next(o for o in last.outputs if o.output_type == "execute_result")
    assert "macro_f1" in result.data["text/plain"]
