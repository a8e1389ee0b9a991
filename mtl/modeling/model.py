"""MultiTaskModel: one shared encoder, one head per task.

``forward(task, **batch)`` runs the encoder once and the named task's head on its hidden states.
``save_pretrained`` / ``from_pretrained`` follow the checkpoint layout of :mod:`mtl.training.checkpoint`: a
transformers ``config.json`` extended with each task's head kind and arguments, one flat
``model.safetensors`` ("encoder.*", "heads.<task>.*"); loading never unpickles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import PreTrainedModel

from heads import HeadOutput, build_head
from mtl.errors import KlueInputError
from mtl.modeling.encoder import encoder_from_config

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CONFIG_KEY = "klue_mtl"  # our section inside the transformers config.json

# Batch keys the encoder reads; every other key belongs to the head.
_ENCODER_INPUTS = ("input_ids", "attention_mask")


class MultiTaskModel(nn.Module):
    """A shared transformer encoder with a ``ModuleDict`` of task heads."""

    def __init__(self, encoder: PreTrainedModel, head_specs: Mapping[str, Mapping[str, Any]]) -> None:
        """``head_specs``: task -> {"kind": head kind, "args": head keyword arguments}."""
        super().__init__()
        self.encoder = encoder
        self.head_specs = {
            task: {"kind": s["kind"], "args": dict(s["args"])} for task, s in head_specs.items()
        }
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {task: build_head(s["kind"], hidden, **s["args"]) for task, s in self.head_specs.items()}
        )
        for head in self.heads.values():
            if hasattr(head, "tie_to"):  # a decoder that shares the input embeddings (masked LM)
                head.tie_to(self.encoder.get_input_embeddings())

    @property
    def tasks(self) -> list[str]:
        """The tasks this model has heads for."""
        return list(self.heads)

    def forward(self, task: str, **batch: torch.Tensor) -> HeadOutput:
        """Encode the batch and apply ``task``'s head; the loss is set when targets are present."""
        return self.apply_head(task, self.encode(batch), batch)

    def encode(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The encoder's last hidden states of a batch (``input_ids``, ``attention_mask``)."""
        return self.encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state

    def apply_head(self, task: str, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> HeadOutput:
        """``task``'s head on hidden states :meth:`encode` computed (shared by several heads in
        ``KlueMultiTask.analyze``: one encoder pass, every single-sentence head)."""
        # Heads and losses run in fp32 whatever autocast the encoder ran under: MRC's null-vs-span
        # decision and DP's arc scores compare close logits, which an 8-bit mantissa would blur. (A
        # model someone cast by hand with .to(dtype) runs its heads in their own weights' dtype.)
        head = self.heads[task]
        dtype = next((p.dtype for p in head.parameters() if p.is_floating_point()), torch.float32)
        with fp32_region(hidden):
            return head(hidden.to(dtype), batch)

    @torch.no_grad()
    def predict(self, task: str, **batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Forward pass and the head's decoding (argmax, tree, best span...)."""
        return self.predict_hidden(task, self.encode(batch), batch)

    @torch.no_grad()
    def predict_hidden(
        self, task: str, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """:meth:`predict` from hidden states already computed by :meth:`encode`."""
        output = self.apply_head(task, hidden, batch)
        with fp32_region(batch["input_ids"]):
            return self.heads[task].predict(output, batch)

    def keep_tasks(self, tasks: list[str]) -> None:
        """Drop every head not in ``tasks`` (fine-tuning one head of a joint checkpoint)."""
        for task in list(self.heads):
            if task not in tasks:
                del self.heads[task]
                del self.head_specs[task]

    # -- persistence -----------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The encoder's transformers config plus the head specs, as saved in config.json."""
        config = self.encoder.config.to_dict()
        config[CONFIG_KEY] = {"heads": self.head_specs}
        return config

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(self.config_dict(), indent=2, ensure_ascii=False))
        # A tied masked-LM decoder is no entry of the head's state dict (MaskedLmHead.tie_to): the
        # embedding matrix is stored once and the model re-ties it when it is rebuilt.
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, map_location: str = "cpu") -> MultiTaskModel:
        """Rebuild the model from a checkpoint folder written by :meth:`save_pretrained`."""
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        for p in (config_path, weights_path):
            if not p.is_file():
                raise KlueInputError(
                    p, None, "checkpoint file missing (is this a klue-mtl checkpoint folder?)"
                )
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise KlueInputError(config_path, None, f"not valid JSON: {e}") from None
        if CONFIG_KEY not in config:
            raise KlueInputError(config_path, None, f"no '{CONFIG_KEY}' section: not a klue-mtl checkpoint")
        specs = config.pop(CONFIG_KEY)["heads"]
        model = cls(encoder_from_config(config), specs)
        missing, unexpected = _load_weights(model, weights_path, map_location)
        if unexpected or [k for k in missing if not _may_be_absent(k)]:
            raise KlueInputError(
                weights_path,
                None,
                f"weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})",
            )
        return model


def fp32_region(like: torch.Tensor) -> torch.autocast:
    """A region where autocast is off on ``like``'s device type (ops run in their inputs' dtype)."""
    return torch.autocast(like.device.type, enabled=False)


def _may_be_absent(key: str) -> bool:
    """Buffers like position_ids may legitimately be absent from a saved state dict."""
    return key.endswith("position_ids")


@torch.no_grad()
def _load_weights(model: nn.Module, path: Path, device: str) -> tuple[list[str], list[str]]:
    """Copy the file's tensors into ``model`` one at a time; returns (missing, unexpected) keys.

    One tensor at a time keeps the peak memory of loading at the model plus its largest tensor,
    not twice the model (a whole state dict next to the freshly built model).
    """
    own = model.state_dict(keep_vars=True)
    with safe_open(str(path), framework="pt", device=device) as f:
        keys = list(f.keys())
        for key in keys:
            if key not in own:
                continue
            tensor = f.get_tensor(key)
            if tensor.shape != own[key].shape:
                raise KlueInputError(
                    path,
                    None,
                    f"weights do not match the config ({key}: {tuple(tensor.shape)} vs {tuple(own[key].shape)})",
                )
            # Replacing .data (not copy_) frees the random initial values as loading goes.
            own[key].data = tensor.to(device=own[key].device, dtype=own[key].dtype)
    return [k for k in own if k not in set(keys)], [k for k in keys if k not in own]
