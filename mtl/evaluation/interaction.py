"""Task interaction: how the tasks' gradients on the shared encoder agree or fight.

One fixed probe batch per task (the first batch of the task's training order, so the same batch
every time for a run), each task's loss gradient on the encoder's parameters (model in eval mode: no
dropout, so the probe is deterministic), then the task x task cosine-similarity matrix of those
gradients and their norms. A positive cosine means one step on task A also lowers task B's loss (to
first order); a negative one means the two tasks pull the encoder in opposite directions.

Written as ``interaction.json`` and a labelled heat map ``interaction.png`` by ``klue-mtl
interaction --checkpoint CKPT`` (default folder ``<run>/interaction/<checkpoint name>``) and every
``train.interaction_every`` steps during training (``<output>/interaction/step-<N>``, plus the
TensorBoard image ``interaction/cosine`` and scalars ``interaction/cosine/<a>~<b>``,
``interaction/grad_norm/<task>``).

Memory: every task's flattened encoder gradient is held at once (tasks x encoder parameters floats).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mtl.layout import INTERACTION_DIR, INTERACTION_JSON, INTERACTION_PNG

if TYPE_CHECKING:
    from mtl.training.session import Session


@dataclass
class Interaction:
    """The measured interaction: tasks in run order, cosine matrix (rows/columns in that order)."""

    tasks: list[str]
    cosine: list[list[float]]
    grad_norm: dict[str, float]
    probe_size: dict[str, int]  # units in each task's probe batch
    source: str  # "step N" or the checkpoint folder


def encoder_gradients(model: nn.Module, batches: Mapping[str, Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Each task's loss gradient on the encoder's trainable parameters, flattened (one vector per task).

    The model runs in eval mode (restored afterwards) and ``.grad`` fields are left untouched.
    """
    params = [p for p in model.encoder.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    grads = {}
    try:
        for task, batch in batches.items():
            loss = model(task, **batch).loss
            parts = torch.autograd.grad(loss, params, allow_unused=True)
            grads[task] = torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(parts, params, strict=True)
                ]
            ).float()
    finally:
        model.train(was_training)
    return grads


def cosine_matrix(grads: Mapping[str, torch.Tensor]) -> tuple[np.ndarray, dict[str, float]]:
    """(task x task cosine similarities, gradient norms); a zero gradient has cosine 0 with all."""
    stacked = torch.stack(list(grads.values())).double()
    norms = stacked.norm(dim=1)
    unit = stacked / norms.clamp_min(torch.finfo(torch.float64).tiny)[:, None]
    cosine = (unit @ unit.T).clamp(-1.0, 1.0)
    # A task's own similarity is 1 by definition (the rounding of the normalisation aside).
    cosine.fill_diagonal_(1.0)
    return cosine.cpu().numpy(), dict(zip(grads, norms.tolist(), strict=True))


def measure(model: nn.Module, batches: Mapping[str, Mapping[str, Any]], source: str) -> Interaction:
    """The interaction of ``batches``' tasks (at least one) for ``model`` as it is now."""
    grads = encoder_gradients(model, batches)
    cosine, norms = cosine_matrix(grads)
    sizes = {t: int(b["input_ids"].shape[0]) for t, b in batches.items()}
    return Interaction(list(grads), cosine.tolist(), norms, sizes, source)


def probe_batches(session: Session, tasks: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The first batch of each task's training order (a fresh stream of the run: same seed, same order)."""
    stream = session.make_stream()
    return {t: stream.task_batch(t) for t in (tasks or list(session.data))}


def measure_session(
    session: Session, tasks: list[str] | None = None, source: str | None = None
) -> Interaction:
    """:func:`measure` on the session's model with its probe batches."""
    return measure(session.model, probe_batches(session, tasks), source or "training")


def interaction_figure(result: Interaction) -> Any:
    """A labelled heat map: cosine in every cell (red = conflict, blue = agreement), norms on the rows."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    n = len(result.tasks)
    matrix = np.array(result.cosine)
    size = max(4.5, 0.7 * n + 2.5)
    fig = Figure(figsize=(size + 2.4, size), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="RdBu", vmin=-1.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="cosine of the encoder gradients")
    ticks = list(range(n))
    rows = [f"{t} (|g| {result.grad_norm[t]:.3g})" for t in result.tasks]
    ax.set_xticks(ticks, result.tasks, rotation=45, ha="right", fontsize=9)
    ax.set_yticks(ticks, rows, fontsize=9)
    ax.set_title(f"Task gradient interaction ({result.source})", fontsize=10)
    for i in range(n):
        for j in range(n):
            value = matrix[i, j]
            ax.text(
                j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="white" if abs(value) > 0.6 else "black",
            )  # fmt: skip
    return fig


def write_interaction(result: Interaction, directory: str | Path) -> tuple[Path, Path, np.ndarray]:
    """``interaction.json`` and ``interaction.png`` in ``directory``; returns their paths and the pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from mtl.evaluation.reports import figure_array

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, png_path = directory / INTERACTION_JSON, directory / INTERACTION_PNG
    json_path.write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    fig = interaction_figure(result)
    FigureCanvasAgg(fig).print_png(str(png_path))
    return json_path, png_path, figure_array(fig)


def report_interaction(result: Interaction, directory: Path, tb: Any, step: int) -> None:
    """Write the files and send the heat map and the numbers to the run's reporters."""
    _, _, pixels = write_interaction(result, directory)
    tb.image("interaction/cosine", pixels, step)
    for i, a in enumerate(result.tasks):
        tb.scalar(f"interaction/grad_norm/{a}", result.grad_norm[a], step)
        for j in range(i + 1, len(result.tasks)):
            tb.scalar(f"interaction/cosine/{a}~{result.tasks[j]}", result.cosine[i][j], step)


def interaction_pictures(run_dir: str | Path) -> list[Path]:
    """The heat maps a scoreboard links: the latest of training (``step-<N>``), then every checkpoint's."""
    root = Path(run_dir) / INTERACTION_DIR
    if not root.is_dir():
        return []
    steps, others = [], []
    for png in sorted(root.glob(f"*/{INTERACTION_PNG}")):
        number = png.parent.name.removeprefix("step-")
        if png.parent.name.startswith("step-") and number.isdigit():
            steps.append((int(number), png))
        else:
            others.append(png)
    return [png for _, png in sorted(steps)[-1:]] + others
