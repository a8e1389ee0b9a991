"""KLUE-RE: relation between a marked subject and object entity (30 labels incl. no_relation).

Model side: both entities are wrapped in typed marker tokens added to the shared tokenizer, e.g.
``[SUBJ:PER]이도윤[/SUBJ]은 [OBJ:LOC]여수[/OBJ]에서 태어났다``: one opening marker per (role, entity
type) carries the type into the encoder, one closing marker per role ends the span. The
``entity_marker`` head reads the hidden states at the two opening markers (``subject_index``,
``object_index``). Unlike the baseline (plain ``<subj>`` markers, [CLS] pooling, an error on
overlapping spans), overlapping spans are wrapped with properly nested markers, and a sentence too
long for ``max_length`` is cut around the two entities instead of losing one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mtl.data import re as re_reader
from mtl.data.labels import RE_ENTITY_TYPES, RE_LABELS, RE_NO_RELATION
from mtl.metrics.re import re_metrics
from mtl.tasks.base import (
    Key,
    Task,
    check_label,
    check_list,
    check_number,
    input_error,
    input_text,
    single_label_pairs,
)
from mtl.tasks.sentence import probs_list

ROLES: tuple[str, ...] = ("SUBJ", "OBJ")


def opening_marker(role: str, entity_type: str) -> str:
    """The marker token that opens an entity of ``role`` (SUBJ/OBJ) and ``entity_type``."""
    return f"[{role}:{entity_type}]"


def closing_marker(role: str) -> str:
    """The marker token that closes an entity of ``role``."""
    return f"[/{role}]"


MARKERS: tuple[str, ...] = (
    *(opening_marker(role, t) for role in ROLES for t in RE_ENTITY_TYPES),
    *(closing_marker(role) for role in ROLES),
)
"""All 14 marker tokens: 12 typed openers (2 roles x 6 types), then the 2 closers."""


def mark_entities(sentence: str, subject: Mapping[str, Any], obj: Mapping[str, Any]) -> str:
    """``sentence`` with both entities wrapped in their markers (spans use KLUE's INCLUSIVE end).

    Markers follow the text. Overlapping spans nest: the longer span (the subject on a tie) opens
    first and closes last, so ``[SUBJ:ORG]한빛[OBJ:ORG]전자[/OBJ][/SUBJ]`` for an object inside the
    subject; partly overlapping spans give crossing markers, which is still a valid input.
    """
    entities = [(subject, "SUBJ", 0), (obj, "OBJ", 1)]
    # Opening order: earlier start first, then the longer span (outer), then the subject.
    entities.sort(key=lambda e: (e[0]["start"], -e[0]["end"], e[2]))
    events = []
    for rank, (ent, role, _) in enumerate(entities):
        events.append((ent["start"], 1, rank, opening_marker(role, ent["type"])))
        # At one position closers come before openers, and the later-opened span closes first.
        events.append((ent["end"] + 1, 0, -rank, closing_marker(role)))
    events.sort()
    pieces, previous = [], 0
    for position, _, _, marker in events:
        pieces.append(sentence[previous:position])
        pieces.append(marker)
        previous = position
    pieces.append(sentence[previous:])
    return "".join(pieces)


def keep_positions(length: int, spans: Sequence[tuple[int, int]], budget: int) -> np.ndarray:
    """Sorted indices of the ``budget`` tokens (of ``length``) to keep around entity ``spans``.

    ``spans`` are inclusive (opening marker, closing marker) token positions. Priority: the markers
    themselves, then the tokens inside the entities, then the tokens between the two entities
    (nearest to an entity first), then the outer context by its distance to the entities. When both
    entities and what lies between them fit, the result is therefore one contiguous window centred on
    them; when they are too far apart, the middle of the gap is what gets dropped.
    """
    pos = np.arange(length)
    lo = min(a for a, _ in spans)
    hi = max(b for _, b in spans)
    to_entity = np.min([np.maximum(np.maximum(a - pos, pos - b), 0) for a, b in spans], axis=0)
    to_union = np.maximum(np.maximum(lo - pos, pos - hi), 0)
    priority = np.where(to_union > 0, length + to_union, to_entity)
    priority[to_entity == 0] = -1
    priority[[p for span in spans for p in span]] = -2
    return np.sort(np.argsort(priority, kind="stable")[:budget])


class ReTask(Task):
    name = "re"
    text_of_record = ("sentence",)
    reader = re_reader
    default_max_length = 256
    dev_patterns = ("klue-re-v1*_dev*.json", "re_dev.json")
    official_dev_file = "klue-re-v1.1_dev.json"
    sample_file = "re_{split}.json"
    sample_generator = "mtl.samples.generators.relations"
    published = {"micro_f1": 67.65, "auprc": 68.55}  # KLUE-RoBERTa-base, KLUE test set
    bench_batch_size = 8
    labels = RE_LABELS
    prediction_fields = ("label", "probs")
    main_metric = "micro_f1"
    selection_metric = "micro_f1"  # KLUE-baseline's checkpoint selection
    metric_names = ("micro_f1", "auprc")

    def reference_prediction(self, key: Key, gold: Any, *, alter: bool, seed: int) -> dict[str, Any]:
        names = self.resources["labels"]
        label = (gold["label"] + alter) % len(names)
        probs = np.random.default_rng(seed).random(len(names))
        probs[label] = probs.sum()  # the predicted label is the most probable one
        return {"guid": key, "label": names[label], "probs": (probs / probs.sum()).tolist()}

    def label_pairs(
        self, records: Sequence[Mapping[str, Any]], preds: Sequence[Mapping[str, Any]]
    ) -> tuple[list[str], list[int], list[int]] | None:
        return single_label_pairs(self, records, preds)

    # -- model side ------------------------------------------------------------------------------
    head_kind = "entity_marker"
    special_tokens = MARKERS
    token_fields = ("input_ids",)

    def head_args(self) -> dict[str, Any]:
        return {"num_labels": len(self.resources["labels"])}

    def marker_ids(self) -> dict[str, int]:
        """Token id of every marker; the markers must have been added (``pipeline.add_task_tokens``)."""
        vocab = self.tokenizer.get_vocab()
        missing = [m for m in MARKERS if m not in vocab]
        if missing:
            raise ValueError(
                f"the tokenizer lacks the RE entity markers ({', '.join(missing[:3])}...): "
                "add them with mtl.batching.prepare.add_task_tokens before featurizing"
            )
        return {m: vocab[m] for m in MARKERS}

    def featurize(self, batch: Mapping[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        ids_of = self.marker_ids()
        max_length = self.settings.max_length
        if max_length < 6:
            raise ValueError(f"re: max_length {max_length} cannot hold [CLS], four markers and [SEP]")
        texts = [
            mark_entities(s, subj, obj)
            for s, subj, obj in zip(batch["sentence"], batch["subject"], batch["object"], strict=True)
        ]
        # (subject opener, subject closer, object opener, object closer) of every record.
        markers = [
            (
                ids_of[opening_marker("SUBJ", subj["type"])],
                ids_of[closing_marker("SUBJ")],
                ids_of[opening_marker("OBJ", obj["type"])],
                ids_of[closing_marker("OBJ")],
            )
            for subj, obj in zip(batch["subject"], batch["object"], strict=True)
        ]
        reattach = self.particle_reattacher()
        enc = self.tokenizer(texts, **self.encode_kwargs(), return_offsets_mapping=reattach is not None)
        input_ids = enc["input_ids"]
        if reattach is not None:
            input_ids = [
                reattach(ids, offs) for ids, offs in zip(input_ids, enc["offset_mapping"], strict=True)
            ]
        # Plain truncation is fine when it only cut context; a row that lost a marker is re-cut.
        cut = [
            i for i, ids in enumerate(input_ids) if len(ids) >= max_length and not set(markers[i]) <= set(ids)
        ]
        if cut:
            full_enc = self.tokenizer(
                [texts[i] for i in cut],
                add_special_tokens=False,
                return_token_type_ids=False,
                verbose=False,
                return_offsets_mapping=reattach is not None,
            )
            full = full_enc["input_ids"]
            if reattach is not None:
                full = [
                    reattach(ids, offs) for ids, offs in zip(full, full_enc["offset_mapping"], strict=True)
                ]
            for i, ids in zip(cut, full, strict=True):
                input_ids[i] = self._window(ids, markers[i], max_length)
        out: dict[str, list[Any]] = {
            "input_ids": input_ids,
            "subject_index": [ids.index(m[0]) for ids, m in zip(input_ids, markers, strict=True)],
            "object_index": [ids.index(m[2]) for ids, m in zip(input_ids, markers, strict=True)],
            "example_index": list(indices),
        }
        if all(label is not None for label in batch["label"]):
            out["labels"] = list(batch["label"])
        return out

    def _window(self, ids: list[int], markers: tuple[int, int, int, int], max_length: int) -> list[int]:
        """[CLS] + the tokens of ``ids`` (no specials) kept around both entities + [SEP]."""
        spans = [
            (ids.index(markers[0]), ids.index(markers[1])),
            (ids.index(markers[2]), ids.index(markers[3])),
        ]
        kept = keep_positions(len(ids), spans, max_length - 2)
        tok = self.tokenizer
        return [tok.cls_token_id, *np.asarray(ids)[kept].tolist(), tok.sep_token_id]

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        names = self.resources["labels"]
        by_record = {int(i): o for i, o in zip(features["example_index"], outputs, strict=True)}
        uniform = [1.0 / len(names)] * len(names)
        rows = []
        for i, record in enumerate(records):
            out = by_record.get(i)
            if out is None:  # never happens (one feature per record), but a unit is never dropped
                rows.append({"guid": record["guid"], "label": names[RE_NO_RELATION], "probs": uniform})
                continue
            rows.append(
                {"guid": record["guid"], "label": names[int(out["label"])], "probs": probs_list(out["probs"])}
            )
        return rows

    # -- scoring ---------------------------------------------------------------------------------
    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        problem = check_label(pred.get("label"), self.labels)
        problem = problem or check_list(pred.get("probs"), "probs", len(self.labels))
        if problem:
            return problem
        for i, p in enumerate(pred["probs"]):
            if bad := check_number(p, f"probs[{i}]"):
                return bad
        return None

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        index = {name: i for i, name in enumerate(self.labels)}
        probs = np.asarray([p["probs"] for p in preds], dtype=np.float64).reshape(
            len(preds), len(self.labels)
        )
        return re_metrics([g["label"] for g in golds], [index[p["label"]] for p in preds], probs)

    def particle_reattacher(self) -> Callable[[list[int], list[tuple[int, int]]], list[int]] | None:
        """For a WordPiece tokenizer, a function that re-attaches a particle glued to a closing marker.

        ``여수[/OBJ]에서`` tokenizes as ``여 ##수 [/OBJ] 에서``: the tokenizer starts a new word after the
        added marker token, though the text has no space there. KLUE-baseline rewrites that first
        Hangul piece as a ``##`` continuation (``##에서``), so the particle reads as it does in
        pre-training; so do we, but only when the continuation is in the vocabulary (the baseline
        would turn a missing one into [UNK]). None for other tokenizers (nothing to re-attach).
        """
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        model = getattr(backend, "model", None)
        if type(model).__name__ != "WordPiece":
            return None
        prefix = model.continuing_subword_prefix
        vocab = self.tokenizer.get_vocab()
        closers = {vocab[closing_marker(role)] for role in ROLES if closing_marker(role) in vocab}
        tokens = {i: t for t, i in vocab.items()}

        def reattach(ids: list[int], offsets: list[tuple[int, int]]) -> list[int]:
            ids = list(ids)
            for k in range(len(ids) - 1):
                glued = offsets[k + 1][0] == offsets[k][1] and offsets[k + 1][1] > offsets[k + 1][0]
                if ids[k] not in closers or not glued:
                    continue
                token = tokens.get(ids[k + 1], "")
                if token and not token.startswith(prefix) and "가" <= token[0] <= "힣":
                    ids[k + 1] = vocab.get(prefix + token, ids[k + 1])
            return ids

        return reattach

    # -- per-task recipe (README "Per-task budgets") ------------------------------------------------
    #: training units (features) of the KLUE train split: 32,470 sentences
    klue_train_size = 32_470
    #: evaluation units (features) of the KLUE dev split (7,765 sentences), for budgets planned without data
    klue_dev_size = 7_765
    #: KLUE-baseline's epochs for this task (run_all.sh)
    baseline_epochs = 3

    # -- raw inputs (the Python API) ---------------------------------------------------------------
    def records_from_inputs(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """``{"sentence", "subject": (start, end, type), "object": (start, end, type)}`` per item.

        ``end`` is INCLUSIVE, as in KLUE (``sentence[start:end + 1]`` is the entity); ``type`` is one
        of PER, ORG, LOC, DAT, POH, NOH. An entity may also be a mapping with those three keys.
        """
        records = []
        for i, item in enumerate(inputs):
            if not isinstance(item, Mapping):
                raise input_error(self.name, i, "expected a mapping with sentence, subject and object")
            sentence = input_text(self.name, i, item.get("sentence"), "'sentence'")
            entities = [self._entity(i, sentence, item.get(role), role) for role in ("subject", "object")]
            records.append(
                {
                    "guid": f"input-{i}",
                    "sentence": sentence,
                    "subject": entities[0],
                    "object": entities[1],
                    "label": None,
                    "source": "",
                }
            )
        return records

    def _entity(self, index: int, sentence: str, value: Any, role: str) -> dict[str, Any]:
        if isinstance(value, Mapping):
            value = (value.get("start"), value.get("end"), value.get("type"))
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
            raise input_error(self.name, index, f"'{role}' must be (start, end, type), got {value!r:.80}")
        start, end, kind = value
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (start, end)):
            raise input_error(self.name, index, f"'{role}' start and end must be integers")
        if not 0 <= start <= end < len(sentence):
            raise input_error(
                self.name,
                index,
                f"'{role}' span {start}..{end} (end inclusive) is not inside the sentence of {len(sentence)} characters",
            )
        if kind not in RE_ENTITY_TYPES:
            raise input_error(
                self.name, index, f"'{role}' type {kind!r} is not one of {', '.join(RE_ENTITY_TYPES)}"
            )
        return {"word": sentence[start : end + 1], "start": start, "end": end, "type": kind}

    def results(
        self,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
        features: Any,
        outputs: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """``{"label": relation, "probs": {relation: probability}}`` per item."""
        names = list(self.resources["labels"])
        by_guid = {p["guid"]: p for p in predictions}
        return [
            {
                "label": by_guid[r["guid"]]["label"],
                "probs": dict(zip(names, by_guid[r["guid"]]["probs"], strict=True)),
            }
            for r in records
        ]

    baseline_description = "always no_relation"
    nonneural_description = (
        "TF-IDF char 1-3-gram logistic regression (C = 4, fixed) on the entity type pair, the text between the"
        " entities and both entities"
    )

    def split_texts(self, item: Any) -> list[str]:
        return [item["sentence"]]

    def trivial_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        one_hot = [float(i == RE_NO_RELATION) for i in range(len(self.labels))]
        return [{"guid": r["guid"], "label": self.labels[RE_NO_RELATION], "probs": one_hot} for r in heldout]

    def nonneural_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]] | None:
        from mtl.tasks.baselines import tfidf_logreg

        def columns(records: Sequence[Mapping[str, Any]]) -> list[list[str]]:
            cols: list[list[str]] = [[], [], [], []]
            for r in records:
                s, o = r["subject"], r["object"]
                left, right = sorted((s, o), key=lambda e: e["start"])
                cols[0].append(f"S{s['type']}O{o['type']}")
                cols[1].append(r["sentence"][left["end"] + 1 : right["start"]])
                cols[2].append(s["word"])
                cols[3].append(o["word"])
            return cols

        # 30 classes: a cross-validated C would take minutes; C = 4 is fixed, never tuned on held-out
        probs, classes = tfidf_logreg(columns(train), [r["label"] for r in train], columns(heldout), C=4.0)
        full = np.zeros((len(heldout), len(self.labels)))
        full[:, classes] = probs
        return [
            {"guid": r["guid"], "label": self.labels[int(p.argmax())], "probs": [float(x) for x in p]}
            for r, p in zip(heldout, full, strict=True)
        ]
