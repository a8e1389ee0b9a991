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


def run_folders(log_dir: str | Path) -> list[Path]:
    """The log folders of the latest run under ``log_dir`` and its resumes, oldest first.

    ``<output>/tensorboard`` holds one folder per run and per resume (:func:`mtl.tracking.reporters.run_name`:
    ``<time>-start``, ``<time>-resume-<step>``): the latest ``-start`` folder and the resumes after it
    make one curve. A folder with event files directly in it (an older layout, ``evaluate``'s) is
    read as it is.
    """
    log_dir = Path(log_dir)
    if any(p.name.startswith("events.out.tfevents") for p in log_dir.iterdir()):
        return [log_dir]
    runs = sorted(p for p in log_dir.iterdir() if p.is_dir())
    starts = [i for i, p in enumerate(runs) if p.name.endswith("-start")]
    return runs[starts[-1] :] if starts else runs


def read_scalars(log_dir: str | Path, prefix: str = "loss/") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``tag -> (steps, values)`` for every scalar tag starting with ``prefix`` (``loss/total`` left out
    when the prefix is ``loss/``), over the latest run and its resumes (:func:`run_folders`).

    A resume continues from its checkpoint's step, so where its steps overlap the folder before it
    (logged after that checkpoint, before the stop), the resume's values replace them.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    merged: dict[str, dict[int, float]] = {}
    for folder in run_folders(log_dir):
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            if tag.startswith(prefix) and tag != f"{prefix}total":
                events = acc.Scalars(tag)
                if not events:
                    continue
                series = merged.setdefault(tag[len(prefix) :], {})
                first = min(e.step for e in events)
                for step in [s for s in series if s >= first]:
                    del series[step]
                series.update({e.step: e.value for e in events})
    return {
        tag: (np.array(sorted(series)), np.array([series[s] for s in sorted(series)]))
        for tag, series in merged.items()
    }


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
