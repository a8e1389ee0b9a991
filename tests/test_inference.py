"""The one inference loop (training evaluation, `evaluate`, `predict`, the Python API) and its precision."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from mtl.data.ynat import read
from mtl.evaluation.inference import predict_features
from mtl.modeling.precision import pick_autocast
from mtl.samples import sample_path
from mtl.serving.api import KlueMultiTask
from tests.support import tiny_setup


@pytest.mark.parametrize(
    ("precision", "device", "capability", "expected"),
    [
        ("auto", "cpu", None, None),
        ("auto", "cuda", (8, 0), torch.bfloat16),
        ("auto", "cuda", (9, 0), torch.bfloat16),
        ("auto", "cuda", (7, 5), torch.float16),
        ("fp32", "cuda", (9, 0), None),
        ("bf16", "cpu", None, torch.bfloat16),
    ],
)
def test_pick_autocast_follows_the_precision_and_the_card(
    precision: str, device: str, capability: Any, expected: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert pick_autocast(precision, torch.device(device)) is expected


def _ynat() -> tuple[Any, Any, Any]:
    return tiny_setup("ynat", read(sample_path("ynat", "dev"))[:12])


def _dtypes_seen(model: Any) -> dict[str, torch.dtype]:
    """Record the dtype an encoder matmul computes in and that of the hidden states the head receives.

    (The encoder's last op is a layer norm, which autocast keeps in fp32: its output says nothing.)
    """
    seen: dict[str, torch.dtype] = {}

    def encoder_hook(_module: Any, _args: Any, output: Any) -> None:
        seen["encoder"] = output.dtype

    def head_hook(_module: Any, args: Any) -> None:
        seen["head"] = args[0].dtype

    linear = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(encoder_hook)
    for head in model.heads.values():
        head.register_forward_pre_hook(head_hook)
    return seen


def test_autocast_covers_the_encoder_and_the_heads_run_in_fp32() -> None:
    task, model, split = _ynat()
    seen = _dtypes_seen(model)
    outputs = predict_features(model, task, split, batch_size=4, autocast_dtype=torch.bfloat16)
    assert seen == {"encoder": torch.bfloat16, "head": torch.float32}
    assert len(outputs) == len(split.features)


def test_the_api_dtype_is_the_encoder_precision_and_never_casts_the_heads() -> None:
    task, model, _ = _ynat()
    api = KlueMultiTask(model, {"ynat": task}, dtype=torch.bfloat16)
    seen = _dtypes_seen(api.model)
    (result,) = api.predict("ynat", ["유튜브 내달 2일까지 크리에이터 지원 공간 운영"])
    assert seen == {"encoder": torch.bfloat16, "head": torch.float32}
    assert {p.dtype for p in api.model.parameters()} == {torch.float32}
    assert sum(result["probs"].values()) == pytest.approx(1.0, abs=1e-5)


def test_no_progress_bar_is_drawn_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    task, model, split = _ynat()
    predict_features(model, task, split, batch_size=2, progress=True)
    assert capsys.readouterr().err == ""


def test_the_loop_leaves_the_model_in_the_mode_it_found_it() -> None:
    task, model, split = _ynat()
    model.train()
    predict_features(model, task, split, batch_size=4)
    assert model.training
