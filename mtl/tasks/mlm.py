"""Masked language modelling as a task: continued pretraining (TAPT) or an auxiliary objective.

```yaml
tasks:
  mlm:
    kind: masked_lm
    train: "@tasks"            # the texts of the other tasks' TRAIN files (never their dev files),
                               # or a .txt file (one document per line), or JSON Lines / a table
                               # with a ``text`` column (``text:`` names another one)
    text_from: {ynat: hub:klue/klue/ynat/train}   # optional: "@tasks" from these files instead
    dev: null                  # optional; by default a held-aside slice of the training text
    mask_probability: 0.15
    whole_word_masking: false  # true: mask whole eojeols (space-delimited words)
```

Documents longer than ``max_length`` are split into consecutive chunks (nothing is truncated away)
and batched by length like every other task. Each training batch is masked anew (15% of the tokens,
80% ``[MASK]`` / 10% a random token / 10% unchanged) with a NumPy generator that the batch stream
owns and saves, so a resumed run continues with the same masks. Evaluation uses one fixed masking
per chunk (seeded by its position), so masked-token accuracy and perplexity are comparable between
evaluations. Neither the records nor the features hold anything but the text and its token ids.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mtl.data.io import read_text
from mtl.data.table import read_table
from mtl.errors import KlueInputError
from mtl.tasks.base import Key, check_number, input_error
from mtl.tasks.generic import IGNORE_INDEX, GenericTask

#: ``train`` value naming the training texts of the config's other tasks
TASKS_SOURCE = "@tasks"
#: share of the documents held aside for evaluation when no dev file is given (at most MAX_HELDOUT)
HELDOUT_SHARE, MAX_HELDOUT = 0.05, 500


def mask_tokens(
    ids: np.ndarray,
    words: np.ndarray,
    rng: np.random.Generator,
    *,
    probability: float,
    whole_word: bool,
    mask_id: int,
    vocab_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(masked ids, labels) of a ``[B, T]`` batch of original ids.

    ``words`` holds each token's word index (the same integer for the tokens of one eojeol) and a
    negative value for special and padding tokens, which are never masked. Labels are the original
    id at masked positions and -100 elsewhere.
    """
    maskable = words >= 0
    if whole_word:
        # one draw per (row, word), shared by every token of the word
        draws = rng.random((ids.shape[0], int(words.max(initial=0)) + 1))
        chosen = maskable & (np.take_along_axis(draws, np.clip(words, 0, None), axis=1) < probability)
    else:
        chosen = maskable & (rng.random(ids.shape) < probability)
    roll = rng.random(ids.shape)
    random_ids = rng.integers(0, vocab_size, ids.shape)
    masked = ids.copy()
    masked[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = random_ids[swap]
    labels = np.where(chosen, ids, IGNORE_INDEX)
    return masked, labels


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


class MaskedLmTask(GenericTask):
    kind_name = "masked_lm"
    text_columns = 0
    head_kind = "masked_lm"
    target_field = "text"
    prediction_fields = ("masked", "correct", "nll")
    main_metric = "masked_accuracy"
    metric_names = ("masked_accuracy", "perplexity")
    token_fields = ("input_ids", "labels", "word_ids")
    default_max_length = 256
    uses_other_tasks_text: ClassVar[bool] = True

    def check_definition(self, d: Any) -> None:
        self.text_cols = [d.text or "text"] if isinstance(d.text, str) or d.text is None else list(d.text)
        if len(self.text_cols) != 1:
            raise KlueInputError(
                None, f"tasks.{self.name}.text", "masked_lm reads one text column", kind="key"
            )
        if not 0.0 < d.mask_probability < 1.0:
            raise KlueInputError(None, f"tasks.{self.name}.mask_probability", "must be in (0, 1)", kind="key")

    # -- reading ----------------------------------------------------------------------------------
    def reads_other_tasks(self, split: str) -> bool:
        """True when this split's text comes from the other tasks' training records."""
        return split == "train" and self.definition.train == TASKS_SOURCE

    def read(self, path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[dict[str, Any]]:
        if str(path) == TASKS_SOURCE:
            raise KlueInputError(
                path, None, f"{TASKS_SOURCE} is only a train source (it reads the other tasks)"
            )
        if Path(str(path)).suffix.lower() == ".txt":
            lines = read_text(path).splitlines()
            docs = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
        else:
            column = self.text_cols[0]
            docs = [(where, self._column(row, column, path, where)) for where, row in read_table(path)]
            for where, text in docs:
                if not isinstance(text, str):
                    raise KlueInputError(path, where, f"column {column!r} must be text, got {text!r}")
            docs = [(where, text.strip()) for where, text in docs if text.strip()]
        if not docs:
            raise KlueInputError(path, None, "holds no text")
        return self.from_texts([text for _, text in docs])

    def read_target(self, value: Any, record: Mapping[str, Any], path: Any, where: Any) -> None:
        """No label column: the targets are the tokens masked per batch (:meth:`train_batch`)."""
        return None

    def from_texts(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Records of documents, duplicates dropped (NLI repeats its premises, MRC its contexts)."""
        unique = list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))
        return [{"guid": None, "index": i, "text": t} for i, t in enumerate(unique)]

    def split_heldout(self, records: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
        """(train, held-aside) documents by a stable hash of the text: the dev split when none is given."""
        budget = max(1, min(MAX_HELDOUT, int(len(records) * HELDOUT_SHARE)))
        order = sorted(range(len(records)), key=lambda i: _seed("heldout", records[i]["text"]))
        held = set(order[:budget]) if len(records) > 1 else set()
        train = [r for i, r in enumerate(records) if i not in held]
        dev = [r for i, r in enumerate(records) if i in held]
        renumber = lambda rs: [{**r, "index": i} for i, r in enumerate(rs)]  # noqa: E731
        return renumber(train), renumber(dev)

    def build_resources(self, settings: Any) -> dict[str, Any]:
        return {"labels": []}

    def records_from_inputs(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        raise input_error(
            self.name,
            0,
            "a masked-LM head fills masks through transformers: `klue-mtl export --task "
            f"{self.name}` writes a RobertaForMaskedLM folder for pipeline('fill-mask')",
        )

    def record_texts(self, record: Mapping[str, Any]) -> list[str]:
        return [record["text"]]

    # -- scoring ----------------------------------------------------------------------------------
    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        for field in self.prediction_fields:
            if problem := check_number(pred.get(field), field):
                return problem
        return None

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        masked = sum(float(p["masked"]) for p in preds)
        if masked == 0:
            return {"masked_accuracy": 0.0, "perplexity": float("inf")}
        correct, nll = sum(float(p["correct"]) for p in preds), sum(float(p["nll"]) for p in preds)
        return {"masked_accuracy": 100.0 * correct / masked, "perplexity": math.exp(min(nll / masked, 700.0))}

    def reference_prediction(self, key: Key, gold: Any, *, alter: bool, seed: int) -> dict[str, Any]:
        return {"index": key, "masked": 10, "correct": 5 if alter else 10, "nll": 7.0 if alter else 0.5}

    # -- model side -------------------------------------------------------------------------------
    def head_args(self) -> dict[str, Any]:
        return {"vocab_size": len(self.tokenizer)}

    def mask_settings(self) -> dict[str, Any]:
        return {
            "probability": self.settings.mask_probability,
            "whole_word": self.settings.whole_word_masking,
            "mask_id": self.tokenizer.mask_token_id,
            "vocab_size": len(self.tokenizer),
        }

    def featurize(self, batch: Mapping[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        if self.tokenizer.mask_token_id is None:
            raise KlueInputError(None, f"tasks.{self.name}", "the tokenizer has no mask token")
        enc = self.tokenizer(
            batch["text"],
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            stride=0,  # consecutive chunks: every token is trained on exactly once
            **self.encode_kwargs(),
        )
        settings = self.mask_settings()
        out: dict[str, list[Any]] = {"input_ids": [], "labels": [], "word_ids": [], "example_index": []}
        chunk_of: dict[int, int] = defaultdict(int)
        for ids, offsets, source in zip(
            enc["input_ids"], enc["offset_mapping"], enc["overflow_to_sample_mapping"], strict=True
        ):
            text, index = batch["text"][source], indices[source]
            words = eojeol_ids(text, offsets)
            chunk = chunk_of[index]
            chunk_of[index] += 1
            # One fixed masking per chunk: the evaluation masks (training batches are masked anew).
            rng = np.random.default_rng(_seed("eval-mask", text, chunk))
            masked, labels = mask_tokens(np.asarray([ids]), np.asarray([words]), rng, **settings)
            out["input_ids"].append(masked[0].tolist())
            out["labels"].append(labels[0].tolist())
            out["word_ids"].append(words)
            out["example_index"].append(index)
        return out

    def train_batch(self, batch: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Mask a training batch anew (tensors in, tensors out, same device)."""
        ids, labels = batch["input_ids"], batch["labels"]
        original = np.where(labels.cpu().numpy() != IGNORE_INDEX, labels.cpu().numpy(), ids.cpu().numpy())
        words = batch["word_ids"].cpu().numpy()
        masked, new_labels = mask_tokens(original, words, rng, **self.mask_settings())
        batch["input_ids"] = ids.new_tensor(masked)
        batch["labels"] = labels.new_tensor(new_labels)
        return batch

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for example, output in zip(features["example_index"], outputs, strict=True):
            s = sums[int(example)]
            s[0] += float(output["masked"])
            s[1] += float(output["correct"])
            s[2] += float(output["nll"])
        return [
            self.prediction_row(r, masked=int(sums[i][0]), correct=int(sums[i][1]), nll=sums[i][2])
            for i, r in enumerate(records)
        ]


def eojeol_ids(text: str, offsets: Sequence[Sequence[int]]) -> list[int]:
    """Per token: the index of the space-delimited word (eojeol) its first character is in; -1 for
    special tokens (empty offsets)."""
    starts = np.cumsum([0] + [1 if c.isspace() else 0 for c in text])  # spaces before each position
    return [int(starts[s]) if e > s else -1 for s, e in offsets]
