"""``klue-mtl export``: one task of the joint model as a plain transformers model folder.

Which transformers class a head becomes depends on its kind only:

==============  ===================================  ==============================================
head kind       class                                weights
==============  ===================================  ==============================================
classification  AutoModelForSequenceClassification   dense/out_proj -> classifier.dense/out_proj
regression      AutoModelForSequenceClassification   the same, ``num_labels=1``, regression
token_tagging   AutoModelForTokenClassification      classifier -> classifier
span            AutoModelForQuestionAnswering        qa_outputs -> qa_outputs
masked_lm       AutoModelForMaskedLM                 dense/layer_norm/bias -> lm_head.*, decoder tied
other kinds     AutoModel (the bare encoder)         + ``klue_head.safetensors`` and ``klue_head.json``
==============  ===================================  ==============================================

The mapping is exact because the heads have the transformers layouts (RobertaClassificationHead:
dropout, dense, tanh, dropout, out_proj on token 0; RobertaForTokenClassification: dropout,
classifier; RobertaForQuestionAnswering: qa_outputs on every token; dropout is off at inference).
An export is only written after the folder, loaded back with its Auto class, gives the joint
model's logits (to ``TOLERANCE``) on random inputs; otherwise it is refused.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from mtl.errors import KlueInputError
from mtl.layout import TOKENIZER_CONFIG_FILE

#: head kind -> (transformers Auto class, head parameter prefix -> exported name)
EXPORTS: dict[str, tuple[str, dict[str, str]]] = {
    "classification": (
        "AutoModelForSequenceClassification",
        {"dense": "classifier.dense", "out_proj": "classifier.out_proj"},
    ),
    "regression": (
        "AutoModelForSequenceClassification",
        {"dense": "classifier.dense", "out_proj": "classifier.out_proj"},
    ),
    "token_tagging": ("AutoModelForTokenClassification", {"classifier": "classifier"}),
    "span": ("AutoModelForQuestionAnswering", {"qa_outputs": "qa_outputs"}),
    "masked_lm": (
        "AutoModelForMaskedLM",
        {"dense": "lm_head.dense", "layer_norm": "lm_head.layer_norm", "bias": "lm_head.bias"},
    ),
}
# Parameters transformers ties to others (the masked-LM decoder is the input embedding matrix).
TIED = ("lm_head.decoder.weight", "lm_head.decoder.bias")
ENCODER_CLASS = "AutoModel"
HEAD_WEIGHTS, HEAD_CONFIG = "klue_head.safetensors", "klue_head.json"
TOLERANCE = 1e-5


def export_task(model: Any, task: str, output: str | Path, *, encoder_only: bool = False) -> dict[str, Any]:
    """Write ``task`` of ``model`` (a :class:`~mtl.serving.api.KlueMultiTask`) to ``output``; returns what was written.

    Raises:
        KlueInputError: no such head, ``output`` is a non-empty folder, or the exported model does
            not reproduce the joint model's logits.
    """
    t = model.task(task)
    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise KlueInputError(out, None, "exists and is not an empty folder; export writes a new folder")
    joint = model.model
    spec = joint.head_specs[task]
    kind = spec["kind"]
    encoder = copy.deepcopy(joint.encoder).float().cpu().eval()
    head = copy.deepcopy(joint.heads[task]).float().cpu().eval()
    if hasattr(head, "tie_to"):  # the masked-LM decoder is the (copied) encoder's embedding matrix
        head.tie_to(encoder.get_input_embeddings())
    cls_name = ENCODER_CLASS if encoder_only or kind not in EXPORTS else EXPORTS[kind][0]
    out.mkdir(parents=True, exist_ok=True)
    if cls_name == ENCODER_CLASS:
        encoder.save_pretrained(str(out))
        if not encoder_only:
            state = {k: v.detach().contiguous() for k, v in head.state_dict().items()}
            save_file(state, str(out / HEAD_WEIGHTS), metadata={"format": "pt"})
            meta = {"task": task, "kind": kind, "args": spec["args"], "resources": t.resources}
            meta["settings"] = {"max_length": t.settings.max_length}
            (out / HEAD_CONFIG).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    else:
        _build_exported(encoder, head, kind, t).save_pretrained(str(out))
    _save_tokenizer(t.tokenizer, t.settings.max_length, out)
    difference = check_export(encoder, head, kind, cls_name, out, t.tokenizer)
    if difference > TOLERANCE:
        raise KlueInputError(
            out,
            None,
            f"the exported {cls_name} differs from the joint model by {difference:.2e} (> {TOLERANCE}): "
            "the head does not map onto the transformers class; do not use this folder",
        )
    (out / "README.md").write_text(_readme(task, kind, cls_name, t, encoder_only), encoding="utf-8")
    return {
        "class": cls_name,
        "kind": kind,
        "checked": f"max |difference| {difference:.1e}",
        "difference": difference,
    }


def _build_exported(encoder: Any, head: Any, kind: str, task: Any) -> Any:
    """The transformers task model holding the encoder's and the head's weights."""
    import transformers

    cls_name, renames = EXPORTS[kind]
    config = copy.deepcopy(encoder.config)
    labels = list(task.resources.get("labels") or [])
    if kind == "regression":
        config.num_labels, config.problem_type = 1, "regression"
        config.id2label, config.label2id = {0: "score"}, {"score": 0}
    elif kind in ("classification", "token_tagging"):
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: i for i, name in enumerate(labels)}
        config.num_labels = len(labels)
        if kind == "classification":
            config.problem_type = "single_label_classification"
    model = getattr(transformers, cls_name).from_config(config)
    prefix = model.base_model_prefix
    state = {f"{prefix}.{k}": v for k, v in encoder.state_dict().items()}
    for key, value in head.state_dict().items():
        module, _, rest = key.partition(".")
        if module not in renames:
            raise KlueInputError(None, None, f"head parameter {key!r} has no place in {cls_name}")
        state[f"{renames[module]}.{rest}" if rest else renames[module]] = value
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids") and k not in TIED]
    if missing or unexpected:
        raise KlueInputError(
            None,
            None,
            f"the {kind} head does not map onto {cls_name} (missing {missing[:3]}, unexpected {unexpected[:3]})",
        )
    return model.eval()


def _save_tokenizer(tokenizer: Any, max_length: int, out: Path) -> None:
    """Save the tokenizer as the task used it.

    klue/roberta takes no token type ids, so pipelines must not send them. ``model_max_length`` is
    the task's ``max_length`` and ``truncation_side`` the side the joint model cut, so that
    ``pipeline(..., truncation=True)`` cuts long inputs exactly as the joint model does (pairs: the
    longer text first, as ``truncation=True`` does in both).
    """
    tokenizer.save_pretrained(str(out))
    path = out / TOKENIZER_CONFIG_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    data["model_input_names"] = ["input_ids", "attention_mask"]
    data["model_max_length"] = max_length
    data["truncation_side"] = tokenizer.truncation_side
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def probe_inputs(tokenizer: Any, vocab_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three random token rows of different lengths ([CLS] ... [SEP], right-padded)."""
    g = torch.Generator().manual_seed(seed)
    lengths = [19, 11, 5]
    ids = torch.full((3, max(lengths)), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(5, vocab_size, (n,), generator=g)
        ids[row, 0], ids[row, n - 1] = tokenizer.cls_token_id, tokenizer.sep_token_id
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


@torch.inference_mode()
def check_export(encoder: Any, head: Any, kind: str, cls_name: str, out: Path, tokenizer: Any) -> float:
    """Largest |difference| between the joint model's outputs and the folder loaded with ``cls_name``."""
    import transformers

    # klue-mtl's encoder has no pooler: do not let transformers add a random one.
    extra = {"add_pooling_layer": False} if cls_name == ENCODER_CLASS else {}
    loaded = getattr(transformers, cls_name).from_pretrained(str(out), **extra).eval()
    batch = probe_inputs(tokenizer, encoder.get_input_embeddings().num_embeddings)
    hidden = encoder(**batch).last_hidden_state
    theirs = loaded(**batch)
    if cls_name == ENCODER_CLASS:
        real = batch["attention_mask"].bool()
        return float((hidden - theirs.last_hidden_state)[real].abs().max())
    if kind == "masked_lm":
        real = batch["attention_mask"].bool()
        return float((head.logits(hidden) - theirs.logits)[real].abs().max())
    ours = head(hidden, batch).outputs
    if kind == "span":
        # The joint head blocks positions no answer may use; compare where it does not.
        allowed = batch["attention_mask"].bool().clone()
        allowed[:, 0] = True
        return max(
            float((ours[k] - getattr(theirs, k))[allowed].abs().max()) for k in ("start_logits", "end_logits")
        )
    if kind == "regression":
        return float((ours["scores"] - theirs.logits.squeeze(-1)).abs().max())
    if kind == "token_tagging":
        real = batch["attention_mask"].bool()
        return float((ours["logits"] - theirs.logits)[real].abs().max())
    return float((ours["logits"] - theirs.logits).abs().max())


def _readme(task: str, kind: str, cls_name: str, t: Any, encoder_only: bool) -> str:
    lines = [
        f"# klue-mtl export: {task} ({kind} head)",
        "",
        f"Loads with `transformers.{cls_name}.from_pretrained(<this folder>)` and "
        "`AutoTokenizer.from_pretrained(<this folder>)`; klue-mtl is not needed. The tokenizer takes no "
        "token type ids. Checked at export: the folder gives the joint model's outputs to 1e-5.",
        "",
        f"Inputs were at most {t.settings.max_length} tokens in training: the tokenizer's "
        "`model_max_length`. Pass `truncation=True` to pipelines and tokenizer calls, so that longer "
        "inputs are cut as the joint model cuts them (without it they reach the model whole and its "
        "outputs differ from the joint model's).",
    ]
    if cls_name == ENCODER_CLASS:
        lines += [
            "",
            "The bare encoder: load it with `AutoModel.from_pretrained(folder, add_pooling_layer=False)` "
            "(klue-mtl has no pooler; without that argument transformers adds a randomly initialised one, "
            "which `last_hidden_state` does not use).",
        ]
        if not encoder_only:
            lines += [
                "",
                f"The {kind} head has no transformers class. Its weights are in `{HEAD_WEIGHTS}` and its "
                f"arguments and vocabularies (label names...) in `{HEAD_CONFIG}`; the module is "
                f"`heads.{kind}` of klue-mtl (`heads.build_head(kind, hidden_size, **args)`), which "
                "reads `last_hidden_state` and the batch fields its featurizer makes (see klue-mtl's "
                f"`mtl/tasks/{task}.py`).",
            ]
    return "\n".join(lines) + "\n"
