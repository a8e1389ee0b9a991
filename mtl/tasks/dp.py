"""KLUE-DP: dependency parsing over eojeols (head + relation per word).

Model side: the words are encoded with ``is_split_into_words=True``; each word is represented by its
first and last sub-token (``word_starts``/``word_ends``), plus, when ``use_pos`` is on, the tag of its
LAST morpheme (``NNG+JKS`` -> ``JKS``), as in the KLUE baseline. The biaffine head decodes a
single-root tree per sentence.

Truncation: only the words that start within ``max_length`` sub-tokens are features (a word cut
mid-way keeps its kept sub-tokens). A gold head pointing at a truncated word is not a target.
Truncated words still get predictions: each hangs on the word after it, the last one on the root
word of the predicted tree, so the sentence stays a single-root tree; their relation is ``NP``
(the most frequent one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtl.data import dp as dp_reader
from mtl.data.labels import DP_DEPRELS, DP_POS_TAGS
from mtl.metrics.dp import dp_metrics
from mtl.tasks.base import Key, Task, check_list, input_error, input_text

IGNORE_INDEX = -100

#: relation id given to truncated words: 0 is the most frequent one (NP) in the baseline's order
FALLBACK_DEPREL = 0

DP_HEAD_DEFAULTS: dict[str, Any] = {"arc_dim": 512, "label_dim": 256, "pos_dim": 256, "dropout": 0.33}


class DpTask(Task):
    name = "dp"
    text_of_record = ("sentence",)
    reader = dp_reader
    default_max_length = 256
    dev_patterns = ("klue-dp-v1*_dev*.tsv", "dp_dev.tsv")
    official_dev_file = "klue-dp-v1.1_dev.tsv"
    sample_file = "dp_{split}.tsv"
    sample_generator = "mtl.samples.generators.dp"
    published = {"uas": 93.04, "las": 88.32}  # KLUE-RoBERTa-base, KLUE test set
    bench_batch_size = 8
    labels = DP_DEPRELS
    prediction_fields = ("heads", "deprels")
    main_metric = "uas"
    selection_metric = "las"  # KLUE-baseline's checkpoint selection
    metric_names = ("uas", "las", "uas_plain", "las_plain")

    head_kind = "biaffine"
    token_fields = ("input_ids",)
    item_fields = ("word_starts", "word_ends", "word_mask", "pos_ids", "heads", "deprels")

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        n = len(gold["words"])
        heads, deprels = pred.get("heads"), pred.get("deprels")
        problem = check_list(heads, "heads", n) or check_list(deprels, "deprels", n)
        if problem:
            return problem + " (one per word)"
        for i, h in enumerate(heads):
            if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h <= n:
                return f"heads[{i}] = {h!r} is not a word index in 0..{n}"
        unknown = next((d for d in deprels if d not in self.labels), None)
        return f"unknown deprel {unknown!r}" if unknown is not None else None

    def reference_prediction(self, key: Key, gold: Any, *, alter: bool, seed: int) -> dict[str, Any]:
        n, names = len(gold["words"]), self.resources["labels"]
        heads = [(h + 1) % (n + 1) if alter and j % 3 == 0 else h for j, h in enumerate(gold["heads"])]
        return {
            "guid": key,
            "heads": heads,
            "deprels": [names[(d + alter) % len(names)] for d in gold["deprels"]],
        }

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        index = {name: i for i, name in enumerate(self.labels)}
        return dp_metrics(
            [g["heads"] for g in golds],
            [g["deprels"] for g in golds],
            [p["heads"] for p in preds],
            [[index[d] for d in p["deprels"]] for p in preds],
        )

    # -- model side ------------------------------------------------------------------------------
    def build_resources(self, settings: Any) -> dict[str, Any]:
        return {"labels": list(self.labels), "pos_tags": list(DP_POS_TAGS)}

    def head_args(self) -> dict[str, Any]:
        pos_vocab = len(self.resources["pos_tags"]) + 1 if self.settings.use_pos else 0  # +1: unknown tag
        # KLUE-baseline's parser widths and dropout (arc 512, type 256, POS 256, 0.33); its BiLSTM is
        # opt-in (``tasks.dp.head: {lstm_layers: 1}``), see README "Heads at baseline strength".
        return {
            "num_labels": len(self.resources["labels"]),
            "pos_vocab_size": pos_vocab,
            **DP_HEAD_DEFAULTS,
        }

    def setup(self, settings: Any, tokenizer: Any, resources: Mapping[str, Any] | None = None) -> None:
        super().setup(settings, tokenizer, resources)
        self._pos_index = {tag: i for i, tag in enumerate(self.resources["pos_tags"])}

    def pos_id(self, pos: str) -> int:
        """Id of the last morpheme tag of a word's ``+``-joined POS string; unknown -> len(pos_tags)."""
        return self._pos_index.get(pos.rsplit("+", 1)[-1], len(self._pos_index))

    def featurize(self, batch: Mapping[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        enc = self.tokenizer(batch["words"], is_split_into_words=True, **self.encode_kwargs())
        out: dict[str, list[Any]] = {
            "input_ids": enc["input_ids"],
            "example_index": list(indices),
            "word_starts": [],
            "word_ends": [],
            "word_mask": [],
        }
        labeled = all(h is not None for h in batch["heads"]) and all(d is not None for d in batch["deprels"])
        if self.settings.use_pos:
            out["pos_ids"] = []
        if labeled:
            out["heads"], out["deprels"] = [], []
        for i, words in enumerate(batch["words"]):
            word_ids = np.array([-1 if w is None else w for w in enc.word_ids(i)], dtype=np.int64)
            # Words past the cut are dropped; without a cut every word is kept, even one whose
            # characters the normaliser deleted entirely (it has no sub-token of its own).
            truncated = bool(enc.encodings[i].overflowing)
            kept = int(word_ids.max()) + 1 if truncated else len(words)
            starts, ends = word_spans(word_ids, kept)
            out["word_starts"].append(starts.tolist())
            out["word_ends"].append(ends.tolist())
            out["word_mask"].append([1] * kept)
            if self.settings.use_pos:
                out["pos_ids"].append([self.pos_id(p) for p in batch["pos"][i][:kept]])
            if labeled:
                heads = np.asarray(batch["heads"][i][:kept], dtype=np.int64)
                # A head among the truncated words cannot be scored (no column for it): no target.
                out["heads"].append(np.where(heads <= kept, heads, IGNORE_INDEX).tolist())
                out["deprels"].append(list(batch["deprels"][i][:kept]))
        return out

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        names = list(self.resources["labels"])
        kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for example, starts, output in zip(
            features["example_index"], features["word_starts"], outputs, strict=True
        ):
            k = len(starts)
            kept[int(example)] = (
                np.asarray(output["heads"], dtype=np.int64)[:k],
                np.asarray(output["deprels"], dtype=np.int64)[:k],
            )
        empty = np.zeros(0, dtype=np.int64)
        predictions = []
        for index, record in enumerate(records):
            heads, deprels = kept.get(index, (empty, empty))
            full_heads, full_deprels = complete_tree(heads, deprels, len(record["words"]), len(names))
            predictions.append(
                {"guid": record["guid"], "heads": full_heads, "deprels": [names[d] for d in full_deprels]}
            )
        return predictions

    # -- per-task recipe (README "Per-task budgets") ------------------------------------------------
    #: training units (features) of the KLUE train split: 10,000 sentences
    klue_train_size = 10_000
    #: evaluation units (features) of the KLUE dev split (2,000 sentences), for budgets planned without data
    klue_dev_size = 2_000
    #: KLUE-baseline's epochs for this task (run_all.sh)
    baseline_epochs = 10

    def records_from_inputs(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """A sentence (split on whitespace into eojeols), a list of eojeols, or ``{"words", "pos"}``.

        ``pos`` (optional) is one ``+``-joined morpheme tag string per word, as in the KLUE files
        (``"NNG+JKS"``); the parser reads the last tag. Without it every word gets the unknown-tag
        embedding, which a checkpoint trained with ``use_pos`` (the default) rarely saw: expect a
        lower accuracy than with the analyser's tags.
        """
        records = []
        for i, item in enumerate(inputs):
            pos = None
            if isinstance(item, Mapping):
                words, pos = item.get("words"), item.get("pos")
            elif isinstance(item, str):
                words = input_text(self.name, i, item).split()
            else:
                words = item
            if isinstance(words, str) or not isinstance(words, Sequence) or not words:
                raise input_error(
                    self.name, i, "expected a sentence, a non-empty list of words or {'words', 'pos'}"
                )
            words = [input_text(self.name, i, w, f"word {k}") for k, w in enumerate(words)]
            if pos is None:
                pos = [""] * len(words)
            elif isinstance(pos, str) or not isinstance(pos, Sequence) or len(pos) != len(words):
                raise input_error(
                    self.name, i, f"'pos' must be a list of {len(words)} tag strings (one per word)"
                )
            elif not all(isinstance(t, str) for t in pos):
                raise input_error(self.name, i, "'pos' must hold strings such as 'NNG+JKS'")
            records.append(
                {
                    "guid": f"input-{i}",
                    "sentence": " ".join(words),
                    "words": words,
                    "lemmas": list(words),
                    "pos": list(pos),
                    "heads": None,
                    "deprels": None,
                }
            )
        return records

    def results(
        self,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
        features: Any,
        outputs: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """``{"words", "heads" (1-based, 0 = root), "deprels"}`` per sentence, one entry per eojeol."""
        by_guid = {p["guid"]: p for p in predictions}
        return [
            {
                "words": list(r["words"]),
                "heads": by_guid[r["guid"]]["heads"],
                "deprels": by_guid[r["guid"]]["deprels"],
            }
            for r in records
        ]

    scoring_unit = "sentence"
    baseline_description = "head = next word (last word -> root), most frequent train label"
    nonneural_description = "per POS sequence (backing off to its last morpheme tag): most frequent train head offset and label; last word -> root"

    def split_texts(self, item: Any) -> list[str]:
        return [item.split("\n", 1)[0].split("\t", 1)[1]]

    def trivial_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        from mtl.tasks.baselines import majority

        label = self.labels[majority(d for r in train for d in r["deprels"])]
        return [
            {
                "guid": r["guid"],
                "heads": [*range(2, len(r["words"]) + 1), 0],
                "deprels": [label] * len(r["words"]),
            }
            for r in heldout
        ]

    def nonneural_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]] | None:
        from mtl.tasks.baselines import majority

        def keys(pos: str) -> tuple[str, str]:
            return pos, pos.rsplit("+", 1)[-1]

        offsets: dict[str, list[int]] = defaultdict(list)
        labels: dict[str, list[int]] = defaultdict(list)
        for r in train:
            for i, (pos, head, rel) in enumerate(zip(r["pos"], r["heads"], r["deprels"], strict=True)):
                if i == len(r["pos"]) - 1:
                    continue  # the last word is the root's place: learnt by rule, not by table
                for key in keys(pos):
                    offsets[key].append(head - (i + 1) if head else 0)
                    labels[key].append(rel)
        offset_of = {k: majority(v) for k, v in offsets.items()}
        label_of = {k: majority(v) for k, v in labels.items()}
        fallback = majority(d for r in train for d in r["deprels"])
        root_label = majority(r["deprels"][-1] for r in train)
        out = []
        for r in heldout:
            n = len(r["words"])
            heads, rels = [], []
            for i, pos in enumerate(r["pos"]):
                if i == n - 1:
                    heads.append(0)
                    rels.append(root_label)
                    continue
                full, last = keys(pos)
                offset = offset_of.get(full, offset_of.get(last, 1))
                head = i + 1 + offset
                heads.append(head if offset and 1 <= head <= n else i + 2)  # off the sentence: next word
                rels.append(label_of.get(full, label_of.get(last, fallback)))
            out.append({"guid": r["guid"], "heads": heads, "deprels": [self.labels[d] for d in rels]})
        return out


def word_spans(word_ids: np.ndarray, num_words: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last token index of words ``0..num_words-1``, from per-token word ids (-1 = special).

    A word with no sub-token of its own (all its characters dropped by the normaliser) points at the
    token before it ([CLS] for a first word), so word positions stay aligned with the record.
    """
    positions = np.flatnonzero(word_ids >= 0)
    if len(positions) == 0:
        return np.zeros(num_words, dtype=np.int64), np.zeros(num_words, dtype=np.int64)
    ids = word_ids[positions]  # non-decreasing
    words = np.arange(num_words)
    left = np.searchsorted(ids, words, side="left")
    right = np.searchsorted(ids, words, side="right")
    ends = np.where(right > 0, positions[np.maximum(right - 1, 0)], 0)
    starts = np.where(right > left, positions[np.minimum(left, len(positions) - 1)], ends)
    return starts, ends


def complete_tree(
    heads: np.ndarray, deprels: np.ndarray, num_words: int, num_labels: int
) -> tuple[list[int], list[int]]:
    """Predictions of every word from those of the kept prefix (heads 1-based, 0 = root).

    Words past the prefix form a chain (each word -> the next) whose last word hangs on the prefix's
    root word (with no root in the prefix: on the last word, which is then the root). Out-of-range
    values (a malformed head output) fall back the same way, so the result always passes the
    contract's checks, and it is a single-root tree whenever the prefix's valid heads are.
    """
    k = min(len(heads), num_words)
    out_heads = [int(h) for h in heads[:k]]
    out_deprels = [int(d) if 0 <= d < num_labels else FALLBACK_DEPREL for d in deprels[:k]]
    valid = [0 <= h <= k and h != i + 1 for i, h in enumerate(out_heads)]
    roots = [i + 1 for i, h in enumerate(out_heads) if h == 0 and valid[i]]
    anchor = roots[0] if roots else num_words  # the word every dangling piece hangs on
    for i in range(k):
        if not valid[i]:
            out_heads[i] = 0 if anchor == i + 1 else anchor
    for j in range(k, num_words):
        out_heads.append(j + 2 if j + 1 < num_words else (0 if anchor == num_words else anchor))
        out_deprels.append(FALLBACK_DEPREL)
    return out_heads, out_deprels
