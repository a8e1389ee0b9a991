"""The shared encoder: a pretrained (or randomly initialised) RoBERTa from ``transformers``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, PreTrainedModel, RobertaConfig

from mtl.config import EncoderConfig
from mtl.errors import KlueInputError

# klue/roberta's special ids ([CLS]=0, [PAD]=1, [SEP]=2), kept by the offline tokenizer too.
_KLUE_ROBERTA_IDS = {"bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2}

# A small default for random initialisation; `architecture` in the config overrides any of it.
_TINY = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 256,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
}


def build_encoder(cfg: EncoderConfig, vocab_size: int) -> PreTrainedModel:
    """A RoBERTa encoder without pooler (every head pools for itself), sized for ``vocab_size`` tokens."""
    if cfg.random_init:
        unknown = set(cfg.architecture) - set(RobertaConfig().to_dict())
        if unknown:
            raise KlueInputError(
                None, f"encoder.architecture.{sorted(unknown)[0]}", "not a RobertaConfig field", kind="key"
            )
        config = RobertaConfig(**{**_TINY, **_KLUE_ROBERTA_IDS, **cfg.architecture, "vocab_size": vocab_size})
        encoder = AutoModel.from_config(config, add_pooling_layer=False)
    elif is_klue_mtl_checkpoint(cfg.name):
        from mtl.modeling.model import MultiTaskModel  # the joint model imports this module

        encoder = MultiTaskModel.from_pretrained(cfg.name).encoder
    else:
        try:
            encoder = AutoModel.from_pretrained(cfg.name, add_pooling_layer=False)
        except OSError as e:
            raise KlueInputError(
                cfg.name,
                None,
                f"cannot load the pretrained encoder ({e.__class__.__name__}: {str(e).splitlines()[0]})",
            ) from None
    if encoder.get_input_embeddings().num_embeddings != vocab_size:
        # RE adds entity-marker tokens to the tokenizer: grow the embedding matrix to match.
        encoder.resize_token_embeddings(vocab_size)
    return encoder


def encoder_from_config(config_dict: dict[str, Any]) -> PreTrainedModel:
    """Rebuild an encoder skeleton (random weights) from a saved transformers config dict."""
    config = AutoConfig.for_model(**config_dict)
    return AutoModel.from_config(config, add_pooling_layer=False)


def is_klue_mtl_checkpoint(name: str) -> bool:
    """True for a folder written by ``MultiTaskModel.save_pretrained`` (its config has our section)."""
    config = Path(name) / "config.json"
    if not config.is_file():
        return False
    try:
        return "klue_mtl" in json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def pretrained_lm_head(name: str, vocab_size: int) -> dict[str, torch.Tensor] | None:
    """The masked-LM head weights that come with encoder ``name`` (``dense``, ``layer_norm``, ``bias``).

    From a ``RobertaForMaskedLM`` checkpoint (``lm_head.*``, as ``klue/roberta-*`` ship), or from the
    masked-LM head of a klue-mtl checkpoint. None when there is none. A bias shorter than
    ``vocab_size`` (tokens added for RE markers) is padded with zeros, as transformers does when it
    resizes an output layer.
    """
    if is_klue_mtl_checkpoint(name):
        from mtl.modeling.model import MultiTaskModel

        model = MultiTaskModel.from_pretrained(name)
        kinds = {task: spec["kind"] for task, spec in model.head_specs.items()}
        task = next((t for t, kind in kinds.items() if kind == "masked_lm"), None)
        state = model.heads[task].state_dict() if task else None
    else:
        from transformers import AutoModelForMaskedLM

        try:
            lm, info = AutoModelForMaskedLM.from_pretrained(name, output_loading_info=True)
        except (OSError, ValueError):
            return None
        if any(key.startswith("lm_head.") for key in info["missing_keys"]):
            return None  # a bare encoder: transformers made a random head up
        state = {k: v for k, v in lm.lm_head.state_dict().items() if not k.startswith("decoder.")}
    if state is None:
        return None
    state = {k: v.detach().clone() for k, v in state.items()}
    if state["bias"].numel() < vocab_size:
        state["bias"] = torch.cat(
            [state["bias"], state["bias"].new_zeros(vocab_size - state["bias"].numel())]
        )
    return state


def set_attention(encoder: PreTrainedModel, kernel: str) -> str:
    """Switch the encoder's attention to ``kernel`` (``encoder.attn_implementation``); returns the one used.

    ``sdpa`` falls back to ``eager`` (with a note) for an encoder class transformers has no SDPA
    attention for; both compute the same attention, so checkpoints do not depend on the choice.
    """
    if kernel == "sdpa" and not getattr(encoder, "_supports_sdpa", False):
        print(f"note: {type(encoder).__name__} has no SDPA attention in transformers; using eager")
        kernel = "eager"
    encoder.set_attn_implementation(kernel)
    return kernel


def enable_gradient_checkpointing(encoder: PreTrainedModel) -> None:
    """Recompute the encoder layers' activations in backward (``train.gradient_checkpointing``).

    Non-reentrant checkpointing: it works with inputs that need no gradient, with DDP's unused
    parameters and with ``torch.compile``, and it replays dropout with the saved RNG state, so the
    loss and the gradients are those of the plain run.
    """
    encoder.config.use_cache = False  # an encoder caches nothing; says so before transformers warns
    kwargs = {"use_reentrant": False}
    if hasattr(encoder, "activation_checkpointing_enable"):  # transformers >= 5.2x names it so
        encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def is_checkpointing(encoder: PreTrainedModel) -> bool:
    """Whether the encoder recomputes its activations in backward (transformers' flag, either name)."""
    flag = getattr(type(encoder), "is_activation_checkpointing", None)  # transformers >= 5.2x
    return bool(
        encoder.is_activation_checkpointing if flag is not None else encoder.is_gradient_checkpointing
    )


#: The KLUE encoders' architectures (their config.json), so a budget needs no download.
KLUE_ENCODERS: dict[str, dict[str, int]] = {
    "klue/roberta-small": {
        "hidden_size": 768,
        "num_hidden_layers": 6,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "klue/roberta-base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "klue/roberta-large": {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
    },
}
KLUE_VOCAB_SIZE = 32_000


def encoder_parameters(cfg: EncoderConfig) -> int | None:
    """Parameters of the encoder ``cfg`` builds, found without downloading or allocating it.

    The architecture comes from ``encoder.architecture`` (random init, with the KLUE vocabulary's
    size unless it names one), a local folder's ``config.json``, the Hugging Face cache, or the KLUE
    encoders' known configs; None when none of them knows it. The model is built on the meta device,
    so the count is transformers' own and costs no memory.
    """
    if cfg.random_init:
        config = RobertaConfig(**{**_TINY, "vocab_size": KLUE_VOCAB_SIZE, **cfg.architecture})
    elif cfg.name in KLUE_ENCODERS:
        config = RobertaConfig(**{**_TINY, "vocab_size": KLUE_VOCAB_SIZE, **KLUE_ENCODERS[cfg.name]})
    else:
        try:
            config = AutoConfig.from_pretrained(cfg.name, local_files_only=True)
        except (OSError, ValueError):
            return None
    with torch.device("meta"):
        model = AutoModel.from_config(config, add_pooling_layer=False)
    return sum(p.numel() for p in model.parameters())
