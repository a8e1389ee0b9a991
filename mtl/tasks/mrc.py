"""KLUE-MRC: extractive question answering with unanswerable questions.

Model side (as KLUE-baseline): ``[CLS] question [SEP] context-window [SEP]``, the question cut to
``max_query_length`` tokens, the context split into windows of ``max_length`` tokens whose starts are
``doc_stride`` context tokens apart, as KLUE-baseline's transformers-3.5
``squad_convert_examples_to_features`` cuts them: a context of ``n`` tokens with room ``r`` for context
in a window gives ``1 + ceil(max(0, n - r) / doc_stride)`` windows. ``window_overlap`` (when set)
switches to transformers' ``run_qa.py`` meaning instead: consecutive windows share that many tokens. The target of a window is the token span of the FIRST gold answer when that
answer lies wholly inside the window's context, else [CLS] (0, 0).

Decoding follows transformers' SQuAD-v2 post-processing: over all windows of a question, the best
span among the ``N_BEST`` top start x top end logits (start <= end, at most ``max_answer_length``
tokens, both in the context) competes with the null score, the minimum over windows of the [CLS]
start + end logits; the answer is "" when the null score is higher.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from mtl.data import mrc as mrc_reader
from mtl.metrics.mrc import mrc_metrics
from mtl.tasks.base import Key, Task, input_error, input_text

N_BEST = 20  # candidate starts and ends per window (the baseline's n_best_size)
NULL_SCORE_DIFF_THRESHOLD = 0.0
SPECIALS_IN_PAIR = 3  # [CLS] q [SEP] c [SEP]


class MrcTask(Task):
    name = "mrc"
    text_of_record = ("context", "question")
    reader = mrc_reader
    default_max_length = 510
    dev_patterns = ("klue-mrc-v1*_dev*.json", "mrc_dev.json")
    official_dev_file = "klue-mrc-v1_dev.subset.json"
    sample_file = "mrc_{split}.json"
    sample_generator = "mtl.samples.generators.mrc"
    published = {"exact_match": 68.67, "rouge_w": 73.98}  # KLUE-RoBERTa-base, KLUE test set
    bench_batch_size = 4
    labels: tuple[str, ...] = ()
    prediction_fields = ("answer",)
    main_metric = "exact_match"
    selection_metric = "rouge_w"  # KLUE-baseline's checkpoint selection
    metric_names = ("exact_match", "rouge_w")

    # -- model side ------------------------------------------------------------------------------
    head_kind = "span"
    token_fields = ("input_ids", "span_mask")
    #: ``offsets``: flat [start0, end0, start1, end1, ...] character offsets of each token into the
    #: context, -1 -1 for tokens outside it
    meta_fields = ("offsets",)

    def build_resources(self, settings: Any) -> dict[str, Any]:
        return {"labels": []}

    def head_args(self) -> dict[str, Any]:
        return {"max_answer_length": self.settings.max_answer_length}

    def window_stride(self) -> int:
        """Overlap mode: token overlap of consecutive windows (``window_overlap``), capped at half the room.

        The tokenizer needs the overlap to be smaller than the room a window leaves for context (it
        panics otherwise), so a short ``max_length`` (tests, quick runs) gets a smaller overlap.
        """
        s = self.settings
        room = s.max_length - s.max_query_length - SPECIALS_IN_PAIR
        if room < 2:
            raise ValueError(
                f"mrc: max_length {s.max_length} leaves no room for context after a question of "
                f"max_query_length {s.max_query_length} tokens"
            )
        overlap = s.doc_stride if s.window_overlap is None else s.window_overlap
        return min(overlap, room // 2)

    def window_overlaps(self, questions: list[str]) -> list[int]:
        """The tokenizer ``stride`` (overlap) for each (truncated) question's windows.

        Step mode (the default): the room a window leaves for context depends on the question's
        length, so the overlap that makes consecutive starts ``doc_stride`` apart is per question:
        ``room - doc_stride`` (0 when ``doc_stride`` exceeds the room: adjacent windows, where the
        baseline would skip tokens).
        """
        stride = self.window_stride()  # also checks that a window has room for context at all
        s = self.settings
        if s.window_overlap is not None:
            return [stride] * len(questions)
        specials = self.tokenizer.num_special_tokens_to_add(pair=True)
        lengths = self.tokenizer(questions, add_special_tokens=False, return_token_type_ids=False)[
            "input_ids"
        ]
        return [max(0, s.max_length - len(q) - specials - s.doc_stride) for q in lengths]

    def truncate_questions(self, questions: list[str]) -> list[str]:
        """Each question cut after its ``max_query_length``-th token (character cut at its end offset)."""
        limit = self.settings.max_query_length
        enc = self.tokenizer(
            questions,
            add_special_tokens=False,
            truncation=True,
            max_length=limit,
            return_offsets_mapping=True,
            return_token_type_ids=False,
        )
        return [
            q[: offsets[-1][1]] if len(offsets) >= limit else q
            for q, offsets in zip(questions, enc["offset_mapping"], strict=True)
        ]

    def featurize(self, batch: Mapping[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        questions = self.truncate_questions(list(batch["question"]))
        contexts = list(batch["context"])
        groups: dict[int, list[int]] = defaultdict(list)  # overlap -> batch positions
        for i, overlap in enumerate(self.window_overlaps(questions)):
            groups[overlap].append(i)
        windows = []  # (batch position, encoding, window number in that encoding)
        for overlap, members in groups.items():
            enc = self.tokenizer(
                [questions[i] for i in members],
                [contexts[i] for i in members],
                truncation="only_second",
                max_length=self.settings.max_length,
                stride=overlap,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
                return_token_type_ids=False,
            )
            windows += [(members[m], enc, f) for f, m in enumerate(enc["overflow_to_sample_mapping"])]
        windows.sort(key=lambda w: w[0])  # record order; stable, so a record's windows stay in order
        # Unlabelled input (labeled=False) has neither answers nor is_impossible: no targets then.
        labeled = all(
            imp or bool(ans) for imp, ans in zip(batch["is_impossible"], batch["answers"], strict=True)
        )
        out: dict[str, list[Any]] = defaultdict(list)
        for sample, enc, f in windows:
            offsets = np.asarray(enc["offset_mapping"][f], dtype=np.int32).reshape(-1, 2)
            first, last = context_range(enc.sequence_ids(f))
            context = np.full_like(offsets, -1)
            context[first : last + 1] = offsets[first : last + 1]
            mask = np.zeros(len(offsets), dtype=np.int8)
            mask[first : last + 1] = 1
            out["input_ids"].append(enc["input_ids"][f])
            out["span_mask"].append(mask)
            out["offsets"].append(context.ravel())
            out["example_index"].append(indices[sample])
            if labeled:
                answers = batch["answers"][sample]
                start, end = answer_tokens(context, first, last, answers[0] if answers else None)
                out["start_positions"].append(start)
                out["end_positions"].append(end)
        return dict(out)

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        spans = self.answer_spans(records, features, outputs)
        return [
            {"guid": r["guid"], "answer": r["context"][span[0] : span[1]] if span else ""}
            for r, span in zip(records, spans, strict=True)
        ]

    # -- scoring ---------------------------------------------------------------------------------
    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        if not isinstance(pred.get("answer"), str):
            return "'answer' must be a string (\"\" for unanswerable)"
        return None

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return mrc_metrics([[a["text"] for a in g["answers"]] for g in golds], [p["answer"] for p in preds])

    # -- decoding and raw inputs (the Python API) --------------------------------------------------
    def answer_spans(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[tuple[int, int] | None]:
        """Per record: the answer's (start, end exclusive) character offsets in the context, or None."""
        max_answer_length = self.settings.max_answer_length
        best: dict[int, tuple[float, int, int]] = {}  # record -> (score, char start, char end)
        null: dict[int, float] = {}
        for (example, offsets), out in zip(_meta_rows(features), outputs, strict=True):
            length = len(offsets)
            start_logits = np.asarray(out["start_logits"], dtype=np.float64)[:length]
            end_logits = np.asarray(out["end_logits"], dtype=np.float64)[:length]
            null[example] = min(null.get(example, np.inf), start_logits[0] + end_logits[0])
            span = best_window_span(start_logits, end_logits, offsets[:, 0] >= 0, max_answer_length)
            if span is not None and (example not in best or span[0] > best[example][0]):
                best[example] = (span[0], int(offsets[span[1], 0]), int(offsets[span[2], 1]))
        return [
            (best[i][1], best[i][2])
            if i in best and null[i] - best[i][0] <= NULL_SCORE_DIFF_THRESHOLD
            else None
            for i in range(len(records))
        ]

    def records_from_inputs(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """``{"question", "context"}`` per item."""
        records = []
        for i, item in enumerate(inputs):
            if not isinstance(item, Mapping):
                raise input_error(self.name, i, "expected a mapping with 'question' and 'context'")
            records.append(
                {
                    "guid": f"input-{i}",
                    "title": "",
                    "context": input_text(self.name, i, item.get("context"), "'context'"),
                    "question": input_text(self.name, i, item.get("question"), "'question'"),
                    "answers": [],
                    "is_impossible": False,
                    "plausible_answers": [],
                    "question_type": None,
                }
            )
        return records

    def reference_prediction(self, key: Key, gold: Any, *, alter: bool, seed: int) -> dict[str, Any]:
        answer = gold["answers"][0]["text"] if gold["answers"] else ""
        return {"guid": key, "answer": answer[1:] if alter else answer}

    def results(
        self,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
        features: Any,
        outputs: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """``{"answer", "start", "end"}`` per question (``end`` exclusive); unanswerable: ``""``, None, None."""
        out = []
        for record, span in zip(records, self.answer_spans(records, features, outputs), strict=True):
            if span is None:
                out.append({"answer": "", "start": None, "end": None})
            else:
                out.append({"answer": record["context"][span[0] : span[1]], "start": span[0], "end": span[1]})
        return out

    # -- per-task recipe (README "Per-task budgets") ------------------------------------------------
    #: training units (features) of the KLUE train split: 17,554 questions x ~2.2 windows of 510 tokens stepped by doc_stride 128 (measured on dev: ~0.55 tokens per context character, 995 characters on average)
    klue_train_size = 38_600
    #: evaluation units (features) of the KLUE dev split: 5,841 questions x ~2.2 windows, as for the train split, for budgets planned without data
    klue_dev_size = 12_850
    #: KLUE-baseline's epochs for this task (run_all.sh)
    baseline_epochs = 5

    scoring_unit = "question"
    baseline_description = "always unanswerable"

    def split_texts(self, item: Any) -> list[str]:
        paragraphs = item["paragraphs"]
        questions = [q["question"] for p in paragraphs for q in p["qas"]]
        return [item.get("title", ""), *(p["context"] for p in paragraphs), *questions]

    def trivial_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        return [{"guid": r["guid"], "answer": ""} for r in heldout]


def context_range(sequence_ids: list[int | None]) -> tuple[int, int]:
    """(first, last) token position of the context (sequence 1) in a window; (0, -1) when it has none."""
    if 1 not in sequence_ids:
        return 0, -1
    first = sequence_ids.index(1)
    return first, len(sequence_ids) - 1 - sequence_ids[::-1].index(1)


def answer_tokens(
    offsets: np.ndarray, first: int, last: int, answer: Mapping[str, Any] | None
) -> tuple[int, int]:
    """Token (start, end) of ``answer`` when it lies wholly in the window's context, else (0, 0).

    ``offsets`` are the window's per-token context offsets; ``first``..``last`` its context tokens.
    """
    if answer is None or first > last:
        return 0, 0
    char_start = answer["start"]
    char_end = char_start + len(answer["text"])
    if not (offsets[first, 0] <= char_start and char_end <= offsets[last, 1]):
        return 0, 0
    ctx = offsets[first : last + 1]
    start = first + int(np.searchsorted(ctx[:, 1], char_start, side="right"))  # first token ending after it
    end = first + int(np.searchsorted(ctx[:, 0], char_end, side="left")) - 1  # last token starting before
    # An answer made only of characters the tokenizer drops (spaces, control marks) has no token.
    return (start, end) if start <= end else (0, 0)


def best_window_span(
    start_logits: np.ndarray, end_logits: np.ndarray, allowed: np.ndarray, max_answer_length: int
) -> tuple[float, int, int] | None:
    """(score, start, end) of the best span of one window among its ``N_BEST`` top starts and ends.

    A span is valid when both ends are ``allowed`` (context tokens), start <= end and it has at most
    ``max_answer_length`` tokens; None when the window has no valid span.
    """
    candidates = np.flatnonzero(allowed)
    if candidates.size == 0:
        return None
    k = min(N_BEST, candidates.size)
    # Stable sorts so that ties go to the earlier token, whatever numpy's partition order.
    starts = candidates[np.argsort(-start_logits[candidates], kind="stable")[:k]]
    ends = candidates[np.argsort(-end_logits[candidates], kind="stable")[:k]]
    scores = start_logits[starts][:, None] + end_logits[ends][None, :]
    length = ends[None, :] - starts[:, None] + 1
    scores = np.where((length >= 1) & (length <= max_answer_length), scores, -np.inf)
    flat = int(np.argmax(scores))
    row, col = divmod(flat, k)
    if not np.isfinite(scores[row, col]):
        return None
    return float(scores[row, col]), int(starts[row]), int(ends[col])


def _meta_rows(features: Any) -> Iterator[tuple[int, np.ndarray]]:
    """(example_index, offsets [T, 2]) of every feature, read in NumPy batches from a Dataset."""
    if hasattr(features, "with_format"):
        columns = features.select_columns(["example_index", "offsets"]).with_format("numpy")
        for part in columns.iter(batch_size=512):
            for example, offsets in zip(part["example_index"], part["offsets"], strict=True):
                yield int(example), np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    else:  # a plain mapping of columns (tests, in-memory use)
        for example, offsets in zip(features["example_index"], features["offsets"], strict=True):
            yield int(example), np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
