"""Test helpers: a tiny randomly initialised model trained on one task, scored officially.

Used by the per-task overfit tests: if a tiny model can memorise a handful of examples to a
near-perfect official score, the featurizer, head and decoder of that task agree with each other.
"""

from __future__ import annotations

from typing import Any

import torch

from mtl.batching.collate import batch_for
from mtl.batching.featurize import feature_lengths, featurize
from mtl.batching.order import eval_batches
from mtl.batching.prepare import Split, add_task_tokens, setup_task
from mtl.config import EncoderConfig, RunConfig, TaskConfig
from mtl.evaluation.inference import evaluate_split
from mtl.modeling.encoder import build_encoder
from mtl.modeling.model import MultiTaskModel
from mtl.modeling.tokenizer import build_offline_tokenizer

TINY_ARCH = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


def tiny_setup(
    task_name: str, records: list[dict[str, Any]], **settings: Any
) -> tuple[Any, MultiTaskModel, Split]:
    """(task, model, split) for ``records`` with a tiny random encoder and the offline tokenizer."""
    torch.manual_seed(0)
    cfg = RunConfig(
        encoder=EncoderConfig(tokenizer="offline", random_init=True, architecture=dict(TINY_ARCH)),
        tasks={task_name: TaskConfig(**settings)},
    )
    tokenizer = build_offline_tokenizer()
    task = setup_task(task_name, cfg, tokenizer)
    add_task_tokens(tokenizer, [task])
    encoder = build_encoder(cfg.encoder, len(tokenizer))
    model = MultiTaskModel(encoder, {task_name: {"kind": task.head_kind, "args": task.head_args()}})
    features = featurize(task, records, progress=False)
    return task, model, Split(records, features, feature_lengths(features))


def overfit(
    task_name: str,
    records: list[dict[str, Any]],
    *,
    steps: int = 300,
    lr: float = 2e-3,
    batch_size: int = 16,
    **settings: Any,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Train on ``records`` only and return (official metrics on them, predictions)."""
    task, model, split = tiny_setup(task_name, records, **settings)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    batches = eval_batches(split.lengths, batch_size)
    model.train()
    for step in range(steps):
        batch = batch_for(task, split, batches[step % len(batches)], "cpu")
        loss = model(task_name, **batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    predictions, metrics = evaluate_split(model, task, split, batch_size=32, progress=False)
    return metrics, predictions


# -- stand-ins for the hub: a klue/roberta-base-shaped model folder and hub-schema exports ------------
def standin_mlm_folder(root: Any, *, tokens: list[str] | None = None, max_positions: int = 66) -> Any:
    """A tiny RobertaForMaskedLM saved the way klue/roberta-base is: BertTokenizer vocab.txt, type_vocab_size 1.

    ``tokens`` extend the vocabulary (e.g. every character of the data); ``max_positions`` is
    ``max_position_embeddings`` (klue/roberta-base: 514, room for 512 tokens).
    """
    import json
    from pathlib import Path

    from transformers import RobertaConfig, RobertaForMaskedLM

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    vocab = ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]", *"가나다라마바사아자차카타파하", "##다", "문서"]
    vocab += [t for t in dict.fromkeys(tokens or []) if t not in vocab]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # klue/roberta-base's own tokenizer_config.json: a cased WordPiece whose [CLS]/[SEP] are bos/eos.
    config = {
        "do_lower_case": False,
        "do_basic_tokenize": True,
        "never_split": None,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "bos_token": "[CLS]",
        "eos_token": "[SEP]",
        "tokenize_chinese_chars": True,
        "strip_accents": None,
        "model_max_length": 512,
        "tokenizer_class": "BertTokenizer",
    }
    (root / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    model_config = RobertaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
    )
    torch.manual_seed(5)
    model = RobertaForMaskedLM(model_config)
    with torch.no_grad():
        model.lm_head.bias.normal_()  # distinguishable from a fresh head's zeros
    model.save_pretrained(str(root))
    return root


def hub_rows(task: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reader records of a KLUE task as rows of the hub ``klue`` schema (/work/shared/klue/HF_SCHEMA.md):
    label ids, no NER/DP guids, MRC answers as ``{answer_start: [...], text: [...]}``."""
    from mtl.data.labels import DP_DEPRELS

    rows: list[dict[str, Any]] = []
    for r in records:
        if task == "ynat":
            rows.append({"guid": r["guid"], "title": r["title"], "label": r["label"], "url": "", "date": ""})
        elif task == "nli":
            rows.append({k: r[k] for k in ("guid", "source", "premise", "hypothesis", "label")})
        elif task == "sts":
            labels = {"label": r["label"], "real-label": r["score"], "binary-label": r["binary"]}
            rows.append({**{k: r[k] for k in ("guid", "source", "sentence1", "sentence2")}, "labels": labels})
        elif task == "ner":
            rows.append({"sentence": r["text"], "tokens": list(r["text"]), "ner_tags": list(r["tags"])})
        elif task == "re":

            def entity(e: dict[str, Any]) -> dict[str, Any]:
                return {"word": e["word"], "start_idx": e["start"], "end_idx": e["end"], "type": e["type"]}

            rows.append(
                {
                    "guid": r["guid"],
                    "sentence": r["sentence"],
                    "subject_entity": entity(r["subject"]),
                    "object_entity": entity(r["object"]),
                    "label": r["label"],
                    "source": r["source"],
                }
            )
        elif task == "dp":
            rows.append(
                {
                    "sentence": r["sentence"],
                    "index": list(range(1, len(r["words"]) + 1)),
                    "word_form": r["words"],
                    "lemma": r["lemmas"],
                    "pos": r["pos"],
                    "head": r["heads"],
                    "deprel": [DP_DEPRELS[d] for d in r["deprels"]],
                }
            )
        elif task == "mrc":
            spans = r["answers"] + r["plausible_answers"]  # how the hub flattens them
            rows.append(
                {
                    "title": r["title"],
                    "context": r["context"],
                    "news_category": "",
                    "source": "",
                    "guid": r["guid"],
                    "is_impossible": r["is_impossible"],
                    "question_type": r["question_type"],
                    "question": r["question"],
                    "answers": {
                        "answer_start": [a["start"] for a in spans],
                        "text": [a["text"] for a in spans],
                    },
                }
            )
        elif task == "wos":
            dialogue = [{**t, "state": t["state"] or []} for t in r["dialogue"]]
            rows.append({"guid": r["guid"], "domains": r["domains"], "dialogue": dialogue})
        else:
            raise ValueError(task)
    return rows
