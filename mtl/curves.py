"""Per-task training-loss curves from TensorBoard logs, drawn to a PNG with Pillow (no plotting stack)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
]


def read_scalars(log_dir: str | Path, prefix: str = "loss/") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``tag -> (steps, values)`` for every scalar tag starting with ``prefix``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        if tag.startswith(prefix) and tag != f"{prefix}total":
            events = acc.Scalars(tag)
            out[tag[len(prefix) :]] = (
                np.array([e.step for e in events]),
                np.array([e.value for e in events]),
            )
    return out


def draw_loss_curves(log_dir: str | Path, target: str | Path, size: tuple[int, int] = (960, 540)) -> Path:
    """One panel per task (log-scale loss against step), so tasks with different loss scales stay readable."""
    from PIL import Image, ImageDraw

    curves = read_scalars(log_dir)
    cols = 4
    rows = max(1, -(-len(curves) // cols))
    width, height = size
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    pw, ph = width // cols, height // rows
    for i, (task, (steps, values)) in enumerate(sorted(curves.items())):
        x0, y0 = (i % cols) * pw, (i // cols) * ph
        left, top, right, bottom = x0 + 40, y0 + 22, x0 + pw - 10, y0 + ph - 24
        draw.rectangle([left, top, right, bottom], outline=(180, 180, 180))
        logv = np.log10(np.clip(values, 1e-6, None))
        lo, hi = float(logv.min()), float(logv.max())
        hi = hi if hi > lo else lo + 1.0
        smax = max(int(steps.max()), 1)
        xs = left + (steps / smax) * (right - left)
        ys = bottom - (logv - lo) / (hi - lo) * (bottom - top)
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=COLORS[i % len(COLORS)], width=2)
        draw.text((left, y0 + 5), f"{task} loss (log10)", fill=(0, 0, 0))
        draw.text((x0 + 2, top), f"{10**hi:.3g}", fill=(90, 90, 90))
        draw.text((x0 + 2, bottom - 10), f"{10**lo:.3g}", fill=(90, 90, 90))
        draw.text((right - 60, bottom + 6), f"step {smax}", fill=(90, 90, 90))
    target = Path(target)
    image.save(target)
    return target
