"""The shared encoder: a pretrained (or randomly initialised) RoBERTa from ``transformers``."""

from __future__ import annotations

from typing import Any

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
