"""The official KLUE metrics (the KLUE-baseline definitions), in percent, with numpy only (no torch import).

One function per task; each takes gold and predictions in the id orders of :mod:`mtl.data.labels` and
returns the metric names of the ``score`` contract. Bad arguments raise ``ValueError``.
"""

from mtl.metrics.classification import accuracy, macro_f1
from mtl.metrics.dp import dp_metrics
from mtl.metrics.mrc import mrc_metrics, normalize_answer
from mtl.metrics.ner import ner_metrics
from mtl.metrics.re import re_metrics
from mtl.metrics.sts import sts_metrics
from mtl.metrics.wos import wos_metrics

__all__ = [
    "accuracy",
    "dp_metrics",
    "macro_f1",
    "mrc_metrics",
    "ner_metrics",
    "normalize_answer",
    "re_metrics",
    "sts_metrics",
    "wos_metrics",
]
