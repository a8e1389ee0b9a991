"""Reports people look at: classification reports that line up with Korean labels, and confusion
matrices as labelled heat maps (PNG and TensorBoard).

Korean class names need a font with Hangul glyphs. The project depends on ``koreanize-matplotlib``
only for the NanumGothic font file it ships (its import side effects are not used); when that font
cannot be found, labels are written in a Latin transliteration (Revised Romanization without
diacritics, :func:`romanize`) and the figure says so.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


# -- text tables ------------------------------------------------------------------------------------
def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide and fullwidth characters count 2."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def pad(text: str, width: int, *, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` terminal columns (left-aligned unless ``right``)."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


def classification_report_text(labels: Sequence[str], gold: Sequence[int], pred: Sequence[int]) -> str:
    """Per-class precision, recall, F1 and support, plus accuracy and macro/weighted averages, as
    sklearn's report does, with columns aligned for wide (Korean) labels."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=ids, zero_division=0)
    rows = [(name, p[i], r[i], f[i], int(s[i])) for i, name in enumerate(labels)]
    total = int(s.sum())
    averages = []
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(gold, pred, labels=ids, average=avg, zero_division=0)
        averages.append((f"{avg} avg", ap, ar, af, total))
    name_w = max(display_width(x) for x in [*labels, "weighted avg"]) + 2
    head = pad("", name_w) + "".join(
        pad(h, 11, right=True) for h in ("precision", "recall", "f1-score", "support")
    )
    lines = [head, ""]
    for name, a, b, c, n in rows:
        lines.append(pad(name, name_w) + f"{a:>11.4f}{b:>11.4f}{c:>11.4f}{n:>11d}")
    lines.append("")
    accuracy = accuracy_score(gold, pred) if len(gold) else 0.0
    lines.append(pad("accuracy", name_w) + " " * 22 + f"{accuracy:>11.4f}{total:>11d}")
    for name, a, b, c, n in averages:
        lines.append(pad(name, name_w) + f"{a:>11.4f}{b:>11.4f}{c:>11.4f}{n:>11d}")
    return "\n".join(lines) + "\n"


def confusion_counts(labels: Sequence[str], gold: Sequence[int], pred: Sequence[int]) -> np.ndarray:
    """Counts, rows gold and columns predicted, over every label."""
    n = len(labels)
    matrix = np.zeros((n, n), dtype=np.int64)
    for g, q in zip(gold, pred, strict=True):
        if 0 <= g < n and 0 <= q < n:
            matrix[g, q] += 1
    return matrix


# -- Hangul in figures --------------------------------------------------------------------------------
def hangul_font() -> Path | None:
    """NanumGothic from the ``koreanize-matplotlib`` package, if installed."""
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "fonts" / "NanumGothic.ttf"
    return path if path.is_file() else None


_INITIALS = [
    "g",
    "kk",
    "n",
    "d",
    "tt",
    "r",
    "m",
    "b",
    "pp",
    "s",
    "ss",
    "",
    "j",
    "jj",
    "ch",
    "k",
    "t",
    "p",
    "h",
]
_VOWELS = [
    "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo",
    "u", "wo", "we", "wi", "yu", "eu", "ui", "i",
]  # fmt: skip
_FINALS = [
    "", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l",
    "m", "p", "p", "t", "t", "ng", "t", "t", "k", "t", "p", "t",
]  # fmt: skip


def romanize(text: str) -> str:
    """Hangul syllables in Revised Romanization (letter by letter, no sound-change rules)."""
    out = []
    for ch in text:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            out.append(_INITIALS[code // 588] + _VOWELS[(code % 588) // 28] + _FINALS[code % 28])
        else:
            out.append(ch)
    return "".join(out)


# -- the heat map ------------------------------------------------------------------------------------
def confusion_figure(matrix: np.ndarray, labels: Sequence[str], title: str) -> Any:
    """A matplotlib figure: class names on both axes, counts in the cells, colour = row share."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    font = hangul_font()
    names = list(labels)
    note = ""
    if font is not None:
        font_manager.fontManager.addfont(str(font))
        family = font_manager.FontProperties(fname=str(font)).get_name()
    else:
        family = "DejaVu Sans"
        if any(display_width(n) != len(n) for n in names):
            names = [romanize(n) for n in names]
            note = " (labels romanized: no Hangul font; pip install koreanize-matplotlib)"
    n = len(names)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    size = max(4.0, 0.38 * n + 2.5)
    fig = Figure(figsize=(size + 1.2, size), dpi=110)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the gold row")
    ticks = list(range(n))
    fontsize = 9 if n <= 12 else 8 if n <= 24 else 7
    ax.set_xticks(ticks, names, rotation=90, fontsize=fontsize, family=family)
    ax.set_yticks(ticks, names, fontsize=fontsize, family=family)
    ax.set_xlabel("predicted", family=family)
    ax.set_ylabel("gold", family=family)
    ax.set_title(title + note, family=family, fontsize=10)
    cell_font = 8 if n <= 12 else 6 if n <= 24 else 5
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                dark = share[i, j] > 0.5
                ax.text(
                    j, i, str(int(matrix[i, j])), ha="center", va="center",
                    fontsize=cell_font, color="white" if dark else "black",
                )  # fmt: skip
    fig.tight_layout()
    return fig


def figure_array(fig: Any) -> np.ndarray:
    """The rendered figure as an HWC uint8 RGB array (for TensorBoard)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def save_confusion_png(matrix: np.ndarray, labels: Sequence[str], title: str, path: str | Path) -> np.ndarray:
    """Write the heat map to ``path`` (PNG); returns its pixels for TensorBoard."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = confusion_figure(matrix, labels, title)
    FigureCanvasAgg(fig).print_png(str(path))
    return figure_array(fig)
