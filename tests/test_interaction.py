"""Task interaction: the cosine matrix of the tasks' encoder gradients, its files, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support import tiny_setup

from mtl.cli.main import main
from mtl.evaluation.interaction import (
    Interaction,
    interaction_pictures,
    measure,
    write_interaction,
)
from mtl.evaluation.scoreboard import build_scoreboard, write_scoreboard
from mtl.tracking.curves import read_scalars


def toy_model_and_batches() -> tuple[torch.nn.Module, dict[str, dict[str, torch.Tensor]]]:
    """A tiny encoder with three classification heads (two sharing a label set), one batch each."""
    from mtl.batching.collate import batch_for
    from mtl.data import nli
    from mtl.modeling.model import MultiTaskModel
    from mtl.samples import SAMPLES_DIR

    records = nli.read(SAMPLES_DIR / "nli_train.json")[:6]
    task, model, split = tiny_setup("nli", records)
    model = MultiTaskModel(model.encoder, {t: model.head_specs["nli"] for t in ("a", "b", "c")})
    torch.manual_seed(1)
    for name in ("a", "b", "c"):  # three different heads on the same kind of batch
        for p in model.heads[name].parameters():
            torch.nn.init.normal_(p, std=0.5)
    batch = batch_for(task, split, list(range(len(records))), "cpu")
    return model, {"a": batch, "b": batch, "c": {**batch, "labels": batch["labels"].roll(1)}}


def test_the_matrix_is_symmetric_with_unit_diagonal_and_equals_direct_cosines() -> None:
    model, batches = toy_model_and_batches()
    result = measure(model, batches, "toy")
    matrix = np.array(result.cosine)
    assert result.tasks == ["a", "b", "c"]
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 1.0)

    # Independently: each task's loss gradient on the encoder, flattened, cosine by torch.
    params = [p for p in model.encoder.parameters() if p.requires_grad]
    model.eval()
    direct = {}
    for task, batch in batches.items():
        model.zero_grad()
        model(task, **batch).loss.backward()
        direct[task] = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params]
        )
    for i, a in enumerate(result.tasks):
        assert result.grad_norm[a] == pytest.approx(direct[a].double().norm().item(), rel=1e-6)
        for j, b in enumerate(result.tasks):
            if i != j:
                expected = torch.nn.functional.cosine_similarity(direct[a], direct[b], dim=0).item()
                assert matrix[i, j] == pytest.approx(expected, abs=1e-5), (a, b)
    assert np.abs(matrix - np.eye(3)).max() > 0.01  # the tasks really differ


def test_files_heat_map_and_scoreboard_link(tmp_path: Path) -> None:
    result = Interaction(["ynat", "nli"], [[1.0, -0.5], [-0.5, 1.0]], {"ynat": 2.0, "nli": 1.0}, {}, "step 3")
    json_path, png_path, pixels = write_interaction(result, tmp_path / "interaction" / "step-3")
    assert json.loads(json_path.read_text())["cosine"] == [[1.0, -0.5], [-0.5, 1.0]]
    assert Image.open(png_path).size[0] > 300 and pixels.ndim == 3
    write_interaction(result, tmp_path / "interaction" / "step-12")
    write_interaction(result, tmp_path / "interaction" / "last")
    # The latest training probe (step 12, not step 3 by name order) and the checkpoint's.
    assert [p.parent.name for p in interaction_pictures(tmp_path)] == ["step-12", "last"]
    board = build_scoreboard({"ynat": {"macro_f1": 50.0}})
    board_json, board_md = write_scoreboard(board, tmp_path)
    assert "interaction/step-12/interaction.png" in board_md.read_text()
    assert json.loads(board_json.read_text())["interaction"] == [
        "interaction/step-12/interaction.png",
        "interaction/last/interaction.png",
    ]


@pytest.mark.slow
def test_training_probes_do_not_change_training_and_the_command_measures_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_engines import no_eval, run

    plain, w_plain = run(tmp_path / "plain", "loop", 4, extra=no_eval())
    probed, w_probed = run(tmp_path / "probed", "loop", 4, extra=[*no_eval(), "train.interaction_every=2"])
    assert plain["losses"] == probed["losses"]
    for name, tensor in w_plain.items():
        assert torch.equal(tensor, w_probed[name]), name
    run_dir = tmp_path / "probed" / "loop"
    at_end = json.loads((run_dir / "interaction" / "step-4" / "interaction.json").read_text())
    assert (run_dir / "interaction" / "step-2" / "interaction.png").is_file()
    logs = read_scalars(run_dir / "tensorboard", prefix="interaction/")
    assert logs["grad_norm/ner"][0].tolist() == [2, 4]
    assert logs["grad_norm/ner"][1][-1] == pytest.approx(at_end["grad_norm"]["ner"])
    assert logs["cosine/ynat~nli"][1][-1] == pytest.approx(at_end["cosine"][0][1])

    assert main(["interaction", "--checkpoint", str(run_dir / "last"), "--tasks", "ynat", "nli", "ner"]) == 0
    out = run_dir / "interaction" / "last"
    measured = json.loads((out / "interaction.json").read_text())
    assert measured["tasks"] == ["ynat", "nli", "ner"]
    index = [at_end["tasks"].index(t) for t in measured["tasks"]]
    np.testing.assert_allclose(
        measured["cosine"], np.array(at_end["cosine"])[np.ix_(index, index)], rtol=1e-6
    )
    assert Image.open(out / "interaction.png").size[1] > 300
    assert "heat map:" in capsys.readouterr().out


def test_interaction_of_a_run_folder_is_exit_2_naming_the_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "last").mkdir()
    assert main(["interaction", "--checkpoint", str(tmp_path)]) == 2
