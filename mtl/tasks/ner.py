"""KLUE-NER: character-level BIO tagging over 6 entity types.

Model side: the sentence is tokenized as one text (a fast tokenizer's offset mapping ties every
sub-token to its characters, ``[UNK]`` included), and each sub-token learns the tag of its FIRST
character, as in the KLUE baseline. A sub-token whose first character is inside an entity therefore
learns ``I-``, and only the sub-token holding the entity's ``B-`` character learns ``B-``. Special
tokens carry no label (-100).

Decoding maps sub-token tags back to one tag per character of ``text`` (spaces included): the first
character of a sub-token gets the sub-token's tag, its other characters get ``I-<type>`` (``B-``
becomes ``I-``) or ``O``; a character no sub-token covers (a space, or a character the tokenizer's
normaliser drops) gets ``I-<type>`` when it sits between two characters of the same predicted entity
and ``O`` otherwise.

Sentences longer than ``max_length`` are cut into overlapping windows; a sub-token seen by several
windows takes the prediction of the window where it has the most context on both sides.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtl.data import ner as ner_reader
from mtl.data.labels import NER_LABELS, NER_OUTSIDE
from mtl.metrics.ner import ner_metrics
from mtl.tasks.base import Key, Task, check_list, input_text

IGNORE_INDEX = -100

#: share of a window that the next window repeats (the tokenizer's ``stride``)
WINDOW_OVERLAP = 0.25


class NerTask(Task):
    name = "ner"
    text_of_record = ("text",)
    reader = ner_reader
    default_max_length = 510
    dev_patterns = ("klue-ner-v1*_dev*.tsv", "ner_dev.tsv")
    official_dev_file = "klue-ner-v1.1_dev.tsv"
    sample_file = "ner_{split}.tsv"
    sample_generator = "mtl.samples.generators.ner"
    published = {"entity_f1": 84.60, "char_f1": 91.44}  # KLUE-RoBERTa-base, KLUE test set
    bench_batch_size = 4
    labels = NER_LABELS
    prediction_fields = ("tags",)
    main_metric = "entity_f1"
    selection_metric = "char_f1"  # KLUE-baseline's checkpoint selection
    metric_names = ("entity_f1", "char_f1")

    head_kind = "token_tagging"
    token_fields = ("input_ids", "labels")
    meta_fields = ("offset_mapping",)

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        tags = pred.get("tags")
        problem = check_list(tags, "tags", len(gold["text"]))
        if problem:
            return problem + " (one tag per character of the sentence, spaces included)"
        unknown = next((t for t in tags if t not in self.labels), None)
        return f"unknown tag {unknown!r}" if unknown is not None else None

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return ner_metrics(
            [g["text"] for g in golds],
            [[NER_LABELS[t] for t in g["tags"]] for g in golds],
            [p["tags"] for p in preds],
        )

    def reference_prediction(self, key: Key, gold: Any, *, alter: bool, seed: int) -> dict[str, Any]:
        tags = [NER_LABELS[t] for t in gold["tags"]]
        return {"guid": key, "tags": ["O", *tags[:-1]] if alter else tags}

    # -- model side ------------------------------------------------------------------------------
    def head_args(self) -> dict[str, Any]:
        return {"num_labels": len(self.resources["labels"])}

    def window_stride(self) -> int:
        """Tokens shared by consecutive windows of a long sentence."""
        return int((self.settings.max_length - 2) * WINDOW_OVERLAP)

    def featurize(self, batch: Mapping[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        enc = self.tokenizer(
            batch["text"],
            return_offsets_mapping=True,
            return_overflowing_tokens=True,
            stride=self.window_stride(),
            **self.encode_kwargs(),
        )
        sources = enc["overflow_to_sample_mapping"]
        out: dict[str, list[Any]] = {
            "input_ids": enc["input_ids"],
            "offset_mapping": enc["offset_mapping"],
            "example_index": [indices[s] for s in sources],
        }
        gold = batch["tags"]
        if all(tags is not None for tags in gold):
            gold_arrays = [np.asarray(tags, dtype=np.int64) for tags in gold]
            out["labels"] = [
                token_labels(gold_arrays[s], offsets).tolist()
                for s, offsets in zip(sources, enc["offset_mapping"], strict=True)
            ]
        return out

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        names = list(self.resources["labels"])
        table = TagTable(names)
        pieces: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = defaultdict(list)
        for example, offsets, output in zip(
            features["example_index"], features["offset_mapping"], outputs, strict=True
        ):
            offs = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
            width = len(offs)
            tags = np.asarray(output["tags"], dtype=np.int64)[:width]
            positions = np.flatnonzero(offs[:, 1] > offs[:, 0])  # real sub-tokens, not [CLS]/[SEP]
            context = np.minimum(positions, width - 1 - positions)
            pieces[int(example)].append((offs[positions, 0], offs[positions, 1], tags[positions], context))
        predictions = []
        for index, record in enumerate(records):
            char_ids = char_tags(len(record["text"]), pieces.get(index, []), table)
            predictions.append({"guid": record["guid"], "tags": [names[i] for i in char_ids]})
        return predictions

    # -- per-task recipe (README "Per-task budgets") ------------------------------------------------
    #: training units (features) of the KLUE train split: 21,008 sentences (one window each at max_length 510)
    klue_train_size = 21_008
    #: evaluation units (features) of the KLUE dev split (5,000 sentences), for budgets planned without data
    klue_dev_size = 5_000
    #: KLUE-baseline's epochs for this task (run_all.sh)
    baseline_epochs = 3

    def records_from_inputs(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """One sentence (a string) per item."""
        return [
            {"guid": f"input-{i}", "text": input_text(self.name, i, t), "tags": None}
            for i, t in enumerate(inputs)
        ]

    def results(
        self,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
        features: Any,
        outputs: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """``{"entities": [{"text", "type", "start", "end"}], "tags": [tag per character]}`` per sentence.

        ``end`` is exclusive (``text[start:end]``). An entity starts at a ``B-`` tag, or at an ``I-``
        tag that does not continue an entity of its type, and runs over the ``I-`` tags of its type.
        """
        by_guid = {p["guid"]: p["tags"] for p in predictions}
        out = []
        for record in records:
            tags = by_guid[record["guid"]]
            entities = [
                {"text": record["text"][a:b], "type": kind, "start": a, "end": b}
                for kind, a, b in entity_spans(tags)
            ]
            out.append({"entities": entities, "tags": list(tags)})
        return out

    scoring_unit = "sentence"
    baseline_description = "every character O"
    nonneural_description = "most frequent train tag of each character (unseen: O), I- after O read as B-"

    def split_texts(self, item: Any) -> list[str]:
        from mtl.data.ner import plain_sentence

        return [plain_sentence(item.split("\n", 1)[0].split("\t", 1)[1])]

    def trivial_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        return [{"guid": r["guid"], "tags": [self.labels[NER_OUTSIDE]] * len(r["text"])} for r in heldout]

    def nonneural_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]] | None:
        counts: dict[str, Counter[int]] = defaultdict(Counter)
        for r in train:
            for char, tag in zip(r["text"], r["tags"], strict=True):
                counts[char][tag] += 1
        best = {char: c.most_common(1)[0][0] for char, c in counts.items()}
        out = []
        for r in heldout:
            tags = [self.labels[best.get(char, NER_OUTSIDE)] for char in r["text"]]
            for i, tag in enumerate(tags):  # strict IOB2 drops an I- that opens an entity: make it B-
                if tag.startswith("I-") and (i == 0 or tags[i - 1][2:] != tag[2:]):
                    tags[i] = "B-" + tag[2:]
            out.append({"guid": r["guid"], "tags": tags})
        return out


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, start, end exclusive) of the entities of a BIO tag sequence (lenient on a stray ``I-``)."""
    spans: list[tuple[str, int, int]] = []
    kind, start = None, 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, name = tag.partition("-")
        if kind is not None and (prefix != "I" or name != kind):
            spans.append((kind, start, i))
            kind = None
        if kind is None and prefix in ("B", "I") and name:
            kind, start = name, i
    return spans


def token_labels(tags: np.ndarray, offsets: Sequence[Sequence[int]]) -> np.ndarray:
    """Per sub-token target: the tag id (``tags`` has one per character) of its first character.

    Special tokens get -100. A sub-token whose first character is ``O`` but that holds an entity's
    ``B-`` character later on learns ``O``, as in the KLUE baseline: the entity start is lost, which
    only happens when an entity starts inside a sub-token (with the offline vocabulary: inside an [UNK]).
    """
    offs = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    real = offs[:, 1] > offs[:, 0]
    labels = np.full(len(offs), IGNORE_INDEX, dtype=np.int64)
    labels[real] = tags[offs[real, 0]]
    return labels


class TagTable:
    """Lookups over a BIO tag list: the inside tag of each tag, its entity type, which is ``O``."""

    def __init__(self, names: Sequence[str]) -> None:
        index = {name: i for i, name in enumerate(names)}
        self.outside = index["O"]
        self.inside = np.array(
            [index[f"I-{n[2:]}"] if n.startswith("B-") else i for i, n in enumerate(names)], dtype=np.int64
        )
        types = sorted({n[2:] for n in names if n != "O"})
        self.type = np.array([types.index(n[2:]) if n != "O" else -1 for n in names], dtype=np.int64)
        self.is_inside = np.array([n.startswith("I-") for n in names])
        self.size = len(names)


def char_tags(
    length: int, pieces: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], table: TagTable
) -> np.ndarray:
    """One tag id per character from sub-token predictions of one sentence's windows.

    Args:
        length: characters in the sentence.
        pieces: per window, the sub-tokens' (first char, end char exclusive, predicted tag id, context),
            where context is the distance to the window's nearest edge (larger wins on overlaps).
        table: the tag lookups.
    """
    out = np.full(length, -1, dtype=np.int64)
    if pieces:
        starts, ends, tags, context = (np.concatenate(column) for column in zip(*pieces, strict=True))
        # One prediction per sub-token: the windows tokenize identically, so a sub-token is its start.
        order = np.lexsort((-context, starts))
        first = np.ones(len(order), dtype=bool)
        first[1:] = starts[order][1:] != starts[order][:-1]
        chosen = order[first]
        starts, ends = starts[chosen], np.minimum(ends[chosen], length)
        # A malformed prediction (out of range, e.g. -100) reads as O rather than crashing a whole eval.
        tags = np.where((tags[chosen] >= 0) & (tags[chosen] < table.size), tags[chosen], table.outside)
        spans = np.maximum(ends - starts, 0)
        owner = np.repeat(np.arange(len(starts)), spans)
        offset_in_token = np.arange(len(owner)) - np.repeat(np.cumsum(spans) - spans, spans)
        chars = starts[owner] + offset_in_token
        out[chars] = np.where(offset_in_token == 0, tags[owner], table.inside[tags[owner]])
    covered = out >= 0
    if covered.all():
        return out
    positions = np.arange(length)
    previous = np.maximum.accumulate(np.where(covered, positions, -1))
    following = np.minimum.accumulate(np.where(covered, positions, length)[::-1])[::-1]
    prev_tag = np.where(previous >= 0, out[np.maximum(previous, 0)], table.outside)
    next_tag = np.where(following < length, out[np.minimum(following, length - 1)], table.outside)
    # An uncovered character continues an entity only when the entity goes on after it.
    inside_entity = (
        (prev_tag != table.outside)
        & table.is_inside[next_tag]
        & (table.type[prev_tag] == table.type[next_tag])
    )
    gap = ~covered
    out[gap] = np.where(inside_entity[gap], next_tag[gap], table.outside)
    return out
