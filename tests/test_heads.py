"""The task heads on random hidden states: shapes, losses, gradients, overfitting, decoding rules."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from heads import HEADS, build_head
from heads.base import Head, HeadOutput
from heads.biaffine import BiaffineHead
from heads.classification import ClassificationHead
from heads.entity_marker import EntityMarkerHead
from heads.regression import RegressionHead
from heads.slot_gate import SlotGateHead
from heads.span import SpanHead, best_span
from heads.token_tagging import TokenTaggingHead

HIDDEN = 16
Batch = dict[str, torch.Tensor]
Case = tuple[Head, torch.Tensor, Batch, tuple[str, ...]]


# --- batches ------------------------------------------------------------------------------------


def _attention_mask(lengths: list[int], length: int) -> torch.Tensor:
    return (torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]).long()


def _base_batch(generator: torch.Generator, lengths: list[int], length: int) -> tuple[torch.Tensor, Batch]:
    hidden = torch.randn(len(lengths), length, HIDDEN, generator=generator)
    batch = {
        "input_ids": torch.randint(5, 100, (len(lengths), length), generator=generator),
        "attention_mask": _attention_mask(lengths, length),
    }
    return hidden, batch


def _random_tree(generator: torch.Generator, n: int) -> list[int]:
    """Heads (0 = ROOT) of a random single-root tree over words 1..n."""
    order = (torch.randperm(n, generator=generator) + 1).tolist()
    heads = [0] * n
    for position, word in enumerate(order[1:], start=1):
        heads[word - 1] = order[int(torch.randint(0, position, (1,), generator=generator))]
    return heads


def classification_case(seed: int = 0, dropout: float = 0.1) -> Case:
    g = torch.Generator().manual_seed(seed)
    hidden, batch = _base_batch(g, [6, 4, 5, 3], 6)
    batch["labels"] = torch.tensor([0, 2, 1, 2])
    return ClassificationHead(HIDDEN, num_labels=3, dropout=dropout), hidden, batch, ("labels",)


def regression_case(seed: int = 0, dropout: float = 0.1) -> Case:
    g = torch.Generator().manual_seed(seed)
    hidden, batch = _base_batch(g, [6, 4, 5, 3], 6)
    batch["labels"] = torch.tensor([0.5, 4.2, 2.0, 3.1])
    return RegressionHead(HIDDEN, dropout=dropout), hidden, batch, ("labels",)


def token_tagging_case(seed: int = 0, dropout: float = 0.1) -> Case:
    g = torch.Generator().manual_seed(seed)
    hidden, batch = _base_batch(g, [8, 5, 7], 8)
    labels = torch.randint(0, 5, (3, 8), generator=g)
    labels[batch["attention_mask"] == 0] = -100
    labels[:, 0] = -100  # [CLS] carries no tag
    batch["labels"] = labels
    return TokenTaggingHead(HIDDEN, num_labels=5, dropout=dropout), hidden, batch, ("labels",)


def span_case(seed: int = 0, dropout: float = 0.1) -> Case:
    g = torch.Generator().manual_seed(seed)
    hidden, batch = _base_batch(g, [10, 8, 10], 10)
    span_mask = torch.zeros(3, 10, dtype=torch.bool)
    span_mask[:, 4:9] = True  # the "context" part of each window
    batch["span_mask"] = span_mask
    batch["start_positions"] = torch.tensor([5, 0, 4])  # 0 = unanswerable ([CLS])
    batch["end_positions"] = torch.tensor([7, 0, 4])
    return SpanHead(HIDDEN, dropout=dropout), hidden, batch, ("start_positions", "end_positions")


def _dp_batch(
    g: torch.Generator, word_counts: list[int], num_words: int, length: int
) -> tuple[torch.Tensor, Batch]:
    """Words of one or two sub-tokens each, laid out after [CLS]; padded words at -100."""
    hidden, batch = _base_batch(g, [length] * len(word_counts), length)
    starts = torch.full((len(word_counts), num_words), -100)
    ends = torch.full((len(word_counts), num_words), -100)
    heads = torch.full((len(word_counts), num_words), -100)
    lengths = []
    for row, count in enumerate(word_counts):
        position = 1
        for word in range(count):
            width = 1 + int(torch.randint(0, 2, (1,), generator=g))
            starts[row, word], ends[row, word] = position, position + width - 1
            position += width
        lengths.append(position)
        heads[row, :count] = torch.tensor(_random_tree(g, count))
    batch["attention_mask"] = _attention_mask(lengths, length)
    batch["word_starts"], batch["word_ends"] = starts, ends
    batch["word_mask"] = starts >= 0
    batch["heads"] = heads
    deprels = torch.randint(0, 4, heads.shape, generator=g)
    batch["deprels"] = deprels.masked_fill(~batch["word_mask"], -100)
    return hidden, batch


def biaffine_case(seed: int = 0, dropout: float = 0.1) -> Case:
    g = torch.Generator().manual_seed(seed)
    hidden, batch = _dp_batch(g, [6, 3, 5], 6, 14)
    head = BiaffineHead(HIDDEN, num_labels=4, arc_dim=32, label_dim=16, dropout=dropout)
    return head, hidden, batch, ("heads", "deprels")


def biaffine_pos_case(seed: int = 0, dropout: float = 0.1) -> Case:
    g = torch.Generator().manual_seed(seed)
    hidden, batch = _dp_batch(g, [5, 4], 5, 12)
    batch["pos_ids"] = torch.randint(0, 7, (2, 5), generator=g).masked_fill(~batch["word_mask"], -100)
    head = BiaffineHead(
        HIDDEN, num_labels=4, arc_dim=32, label_dim=16, pos_vocab_size=7, pos_dim=8, dropout=dropout
    )
    return head, hidden, batch, ("heads", "deprels")


def entity_marker_case(seed: int = 0, dropout: float = 0.1) -> Case:
    g = torch.Generator().manual_seed(seed)
    hidden, batch = _base_batch(g, [9, 7, 9, 6], 9)
    batch["subject_index"] = torch.tensor([1, 4, 2, 3])
    batch["object_index"] = torch.tensor([5, 1, 7, 5])
    batch["labels"] = torch.tensor([0, 3, 5, 1])
    return EntityMarkerHead(HIDDEN, num_labels=6, dropout=dropout), hidden, batch, ("labels",)


SLOT_VALUE_SIZES = [3, 0, 2, 0]  # slots 0 and 2 pick from candidates, slots 1 and 3 are open


def slot_gate_case(seed: int = 0, dropout: float = 0.1) -> Case:
    g = torch.Generator().manual_seed(seed)
    hidden, batch = _base_batch(g, [12, 9, 12], 12)
    span_mask = torch.ones(3, 12, dtype=torch.bool)
    span_mask[:, 0] = False  # [CLS] is no value
    batch["span_mask"] = span_mask
    batch["gate_labels"] = torch.tensor([[4, 4, 0, 1], [0, 4, 4, 2], [3, 0, 4, 4]])
    batch["span_starts"] = torch.tensor([[-100, 2, -100, -100], [-100, 6, -100, -100], [-100, -100, -100, 9]])
    batch["span_ends"] = torch.tensor([[-100, 4, -100, -100], [-100, 6, -100, -100], [-100, -100, -100, 11]])
    batch["value_labels"] = torch.tensor(
        [[2, -100, -100, -100], [-100, -100, 1, -100], [-100, -100, 0, -100]]
    )
    head = SlotGateHead(
        HIDDEN, num_slots=4, value_sizes=SLOT_VALUE_SIZES, max_value_length=4, dropout=dropout
    )
    return head, hidden, batch, ("gate_labels", "span_starts", "span_ends", "value_labels")


CASES: dict[str, Callable[..., Case]] = {
    "classification": classification_case,
    "regression": regression_case,
    "token_tagging": token_tagging_case,
    "span": span_case,
    "biaffine": biaffine_case,
    "biaffine_pos": biaffine_pos_case,
    "entity_marker": entity_marker_case,
    "slot_gate": slot_gate_case,
}

EXPECTED_OUTPUT_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "classification": {"logits": (4, 3)},
    "regression": {"scores": (4,)},
    "token_tagging": {"logits": (3, 8, 5)},
    "span": {"start_logits": (3, 10), "end_logits": (3, 10)},
    "biaffine": {"arc_logits": (3, 6, 7), "label_dep": (3, 6, 16), "label_head": (3, 7, 16)},
    "biaffine_pos": {"arc_logits": (2, 5, 6), "label_dep": (2, 5, 16), "label_head": (2, 6, 16)},
    "entity_marker": {"logits": (4, 6)},
    "slot_gate": {
        "gate_logits": (3, 4, 5),
        "start_logits": (3, 4, 12),
        "end_logits": (3, 4, 12),
        "value_logits": (3, 4, 3),
    },
}

EXPECTED_PREDICTION_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "classification": {"label": (4,), "probs": (4, 3)},
    "regression": {"score": (4,)},
    "token_tagging": {"tags": (3, 8)},
    "span": {"start_logits": (3, 10), "end_logits": (3, 10)},
    "biaffine": {"heads": (3, 6), "deprels": (3, 6)},
    "biaffine_pos": {"heads": (2, 5), "deprels": (2, 5)},
    "entity_marker": {"label": (4,), "probs": (4, 6)},
    "slot_gate": {"gate": (3, 4), "span_start": (3, 4), "span_end": (3, 4), "value": (3, 4)},
}


def _without(batch: Batch, keys: tuple[str, ...]) -> Batch:
    return {key: value for key, value in batch.items() if key not in keys}


# --- every head ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_output_and_prediction_shapes(name: str) -> None:
    torch.manual_seed(0)
    head, hidden, batch, _ = CASES[name]()
    head.eval()
    output = head(hidden, batch)
    assert isinstance(output, HeadOutput)
    assert {key: tuple(value.shape) for key, value in output.outputs.items()} == EXPECTED_OUTPUT_SHAPES[name]
    prediction = head.predict(output, batch)
    assert {key: tuple(value.shape) for key, value in prediction.items()} == EXPECTED_PREDICTION_SHAPES[name]


@pytest.mark.parametrize("name", list(CASES))
def test_loss_is_finite_and_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    head, hidden, batch, _ = CASES[name]()
    head.train()
    output = head(hidden, batch)
    assert output.loss is not None and output.loss.dim() == 0
    assert torch.isfinite(output.loss)
    output.loss.backward()
    for parameter_name, parameter in head.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name


@pytest.mark.parametrize("name", list(CASES))
def test_no_targets_means_no_loss(name: str) -> None:
    head, hidden, batch, target_keys = CASES[name]()
    output = head(hidden, _without(batch, target_keys))
    assert output.loss is None
    assert output.outputs  # inference still gives the raw outputs


@pytest.mark.parametrize("name", list(CASES))
def test_predict_runs_without_gradients(name: str) -> None:
    head, hidden, batch, target_keys = CASES[name]()
    head.eval()
    inference_batch = _without(batch, target_keys)
    prediction = head.predict(head(hidden, inference_batch), inference_batch)
    assert all(not value.requires_grad for value in prediction.values())


@pytest.mark.parametrize(
    "name", ["classification", "token_tagging", "span", "biaffine", "entity_marker", "slot_gate"]
)
def test_all_ignored_targets_give_a_zero_loss_that_still_backpropagates(name: str) -> None:
    head, hidden, batch, target_keys = CASES[name]()
    for key in target_keys:
        batch[key] = torch.full_like(batch[key], -100)
    output = head(hidden, batch)
    assert output.loss is not None
    assert output.loss.item() == 0.0
    output.loss.backward()  # must not raise: the zero is attached to the graph


# --- overfitting a tiny fixed batch ---------------------------------------------------------------


def _train(head: Head, hidden: torch.Tensor, batch: Batch, steps: int, lr: float = 1e-2) -> Batch:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    head.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = head(hidden, batch).loss
        assert loss is not None
        loss.backward()
        optimizer.step()
    head.eval()
    return head.predict(head(hidden, batch), batch)


def test_classification_overfits() -> None:
    head, hidden, batch, _ = classification_case(dropout=0.0)
    prediction = _train(head, hidden, batch, steps=150)
    assert prediction["label"].tolist() == batch["labels"].tolist()


def test_regression_overfits() -> None:
    head, hidden, batch, _ = regression_case(dropout=0.0)
    prediction = _train(head, hidden, batch, steps=300)
    assert torch.allclose(prediction["score"], batch["labels"], atol=0.1)


def test_token_tagging_overfits() -> None:
    head, hidden, batch, _ = token_tagging_case(dropout=0.0)
    prediction = _train(head, hidden, batch, steps=200)
    labelled = batch["labels"] != -100
    assert torch.equal(prediction["tags"][labelled], batch["labels"][labelled])


def test_span_overfits() -> None:
    head, hidden, batch, _ = span_case(dropout=0.0)
    prediction = _train(head, hidden, batch, steps=200)
    assert prediction["start_logits"].argmax(dim=-1).tolist() == batch["start_positions"].tolist()
    assert prediction["end_logits"].argmax(dim=-1).tolist() == batch["end_positions"].tolist()


@pytest.mark.parametrize("case", [biaffine_case, biaffine_pos_case])
def test_biaffine_overfits(case: Callable[..., Case]) -> None:
    head, hidden, batch, _ = case(dropout=0.0)
    prediction = _train(head, hidden, batch, steps=250)
    assert torch.equal(prediction["heads"], batch["heads"])
    assert torch.equal(prediction["deprels"], batch["deprels"])


def test_entity_marker_overfits() -> None:
    head, hidden, batch, _ = entity_marker_case(dropout=0.0)
    prediction = _train(head, hidden, batch, steps=150)
    assert prediction["label"].tolist() == batch["labels"].tolist()


def test_slot_gate_overfits() -> None:
    head, hidden, batch, _ = slot_gate_case(dropout=0.0)
    prediction = _train(head, hidden, batch, steps=300)
    assert torch.equal(prediction["gate"], batch["gate_labels"])
    has_span = batch["span_starts"] != -100
    assert torch.equal(prediction["span_start"][has_span], batch["span_starts"][has_span])
    assert torch.equal(prediction["span_end"][has_span], batch["span_ends"][has_span])
    has_value = batch["value_labels"] != -100
    assert torch.equal(prediction["value"][has_value], batch["value_labels"][has_value])


# --- decoding rules, head by head -----------------------------------------------------------------


def test_classification_predicts_argmax_and_normalised_probabilities() -> None:
    head, hidden, batch, _ = classification_case()
    head.eval()
    output = head(hidden, batch)
    prediction = head.predict(output, batch)
    assert torch.equal(prediction["label"], output.outputs["logits"].argmax(dim=-1))
    assert torch.allclose(prediction["probs"].sum(dim=-1), torch.ones(4))
    assert torch.equal(prediction["probs"].argmax(dim=-1), prediction["label"])


def test_regression_score_is_raw_not_clipped() -> None:
    head, hidden, batch, _ = regression_case()
    head.eval()
    with torch.no_grad():
        head.out_proj.bias.fill_(40.0)
    prediction = head.predict(head(hidden, batch), batch)
    assert (prediction["score"] > 30.0).all()


def test_regression_loss_is_mean_squared_error() -> None:
    head, hidden, batch, _ = regression_case()
    head.eval()
    output = head(hidden, batch)
    expected = ((output.outputs["scores"] - batch["labels"]) ** 2).mean()
    assert torch.allclose(output.loss, expected)


def test_token_tagging_marks_padding_ignored() -> None:
    head, hidden, batch, _ = token_tagging_case()
    head.eval()
    output = head(hidden, batch)
    tags = head.predict(output, batch)["tags"]
    padding = batch["attention_mask"] == 0
    assert (tags[padding] == -100).all()
    assert torch.equal(tags[~padding], output.outputs["logits"].argmax(dim=-1)[~padding])


def test_span_masks_disallowed_positions_but_never_cls() -> None:
    head, hidden, batch, _ = span_case()
    head.eval()
    output = head(hidden, batch)
    allowed = batch["span_mask"] & batch["attention_mask"].bool()
    allowed[:, 0] = True
    for key in ("start_logits", "end_logits"):
        logits = output.outputs[key]
        assert torch.isfinite(logits).all()
        assert (logits[~allowed] <= -1e3).all()
        assert (logits[allowed] > -1e3).all()


def test_span_loss_averages_start_and_end_cross_entropy() -> None:
    head, hidden, batch, _ = span_case()
    head.eval()
    output = head(hidden, batch)
    ce = torch.nn.functional.cross_entropy
    start = ce(output.outputs["start_logits"], batch["start_positions"])
    end = ce(output.outputs["end_logits"], batch["end_positions"])
    assert torch.allclose(output.loss, (start + end) / 2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_span_masking_stays_finite_in_half_precision(dtype: torch.dtype) -> None:
    head, hidden, batch, _ = span_case()
    head = head.to(dtype).eval()
    output = head(hidden.to(dtype), batch)
    assert torch.isfinite(output.outputs["start_logits"]).all()
    assert torch.isfinite(output.loss)


def _brute_force_span(start: np.ndarray, end: np.ndarray, allowed: np.ndarray, max_length: int) -> float:
    best = -np.inf
    for i in np.flatnonzero(allowed):
        for j in np.flatnonzero(allowed):
            if i <= j < i + max_length:
                best = max(best, start[i] + end[j])
    return best


def test_best_span_matches_brute_force() -> None:
    g = torch.Generator().manual_seed(3)
    start, end = torch.randn(40, 9, generator=g), torch.randn(40, 9, generator=g)
    allowed = torch.rand(40, 9, generator=g) < 0.6
    allowed[0] = False  # a row where nothing is allowed
    begin, finish, score = best_span(start, end, allowed, max_length=3)
    for row in range(40):
        expected = _brute_force_span(start[row].numpy(), end[row].numpy(), allowed[row].numpy(), 3)
        if expected == -np.inf:
            assert begin[row] == -100 and finish[row] == -100 and score[row] == -np.inf
            continue
        assert allowed[row, begin[row]] and allowed[row, finish[row]]
        assert begin[row] <= finish[row] < begin[row] + 3
        assert score[row].item() == pytest.approx(expected, abs=1e-5)
        assert score[row].item() == pytest.approx(
            (start[row, begin[row]] + end[row, finish[row]]).item(), abs=1e-5
        )


def test_biaffine_masks_self_loops_and_padded_heads() -> None:
    head, hidden, batch, _ = biaffine_case()
    head.eval()
    arc_logits = head(hidden, batch).outputs["arc_logits"]
    assert torch.isfinite(arc_logits).all()
    words = arc_logits.shape[1]
    for row, count in enumerate(batch["word_mask"].sum(dim=1).tolist()):
        for dependent in range(words):
            for candidate in range(words + 1):
                blocked = candidate == dependent + 1 or candidate > count
                assert (arc_logits[row, dependent, candidate] <= -1e3).item() == blocked


@pytest.mark.parametrize("seed", range(5))
def test_biaffine_always_predicts_single_root_trees(seed: int) -> None:
    head, hidden, batch, _ = biaffine_case(seed=seed)
    head.eval()
    with torch.no_grad():  # sharpen the untrained scores so several words compete for ROOT
        head.arc_weight.mul_(20.0)
    prediction = head.predict(head(hidden, batch), batch)
    mask = batch["word_mask"]
    assert (prediction["heads"][~mask] == -100).all()
    assert (prediction["deprels"][~mask] == -100).all()
    for row in range(mask.shape[0]):
        heads = prediction["heads"][row][mask[row]].tolist()
        assert sum(1 for h in heads if h == 0) == 1
        for word in range(1, len(heads) + 1):
            seen, node = set(), word
            while node != 0:
                assert node not in seen, f"cycle in {heads}"
                seen.add(node)
                node = heads[node - 1]
        assert all(0 <= label < 4 for label in prediction["deprels"][row][mask[row]].tolist())


def test_biaffine_decodes_words_that_are_not_a_prefix() -> None:
    # Masked-out word 1 sits between real words: heads must name real words only, in padded numbering.
    head, hidden, batch, _ = biaffine_case()
    head.eval()
    batch["word_mask"][0, 1] = False
    prediction = head.predict(head(hidden, batch), batch)
    heads = prediction["heads"][0]
    assert heads[1] == -100
    real_heads = heads[batch["word_mask"][0]].tolist()
    assert 2 not in real_heads  # word 2 (1-based) is the masked one
    assert sum(1 for h in real_heads if h == 0) == 1


def test_biaffine_deprels_are_label_argmax_at_predicted_head() -> None:
    head, hidden, batch, _ = biaffine_case()
    head.eval()
    output = head(hidden, batch)
    prediction = head.predict(output, batch)
    heads = prediction["heads"].clamp(min=0)
    scores = head.label_logits(output.outputs["label_dep"], output.outputs["label_head"], heads)
    mask = batch["word_mask"]
    assert torch.equal(prediction["deprels"][mask], scores.argmax(dim=-1)[mask])


def test_biaffine_label_loss_is_read_at_the_gold_head() -> None:
    head, hidden, batch, _ = biaffine_case()
    head.eval()
    full = head(hidden, batch)
    arc_only = head(hidden, _without(batch, ("deprels",)))
    label_logits = head.label_logits(
        full.outputs["label_dep"], full.outputs["label_head"], batch["heads"].clamp(min=0)
    )
    mask = batch["word_mask"]
    label_loss = torch.nn.functional.cross_entropy(label_logits[mask], batch["deprels"][mask])
    assert torch.allclose(full.loss, arc_only.loss + label_loss, atol=1e-5)


def test_entity_marker_reads_only_the_two_marker_states() -> None:
    head, hidden, batch, _ = entity_marker_case()
    head.eval()
    before = head(hidden, batch).outputs["logits"]
    changed = hidden.clone()
    keep = torch.zeros_like(changed[..., 0], dtype=torch.bool)
    rows = torch.arange(4)
    keep[rows, batch["subject_index"]] = True
    keep[rows, batch["object_index"]] = True
    changed[~keep] = torch.randn_like(changed[~keep])
    assert torch.allclose(head(changed, batch).outputs["logits"], before)
    swapped = dict(batch, subject_index=batch["object_index"], object_index=batch["subject_index"])
    assert not torch.allclose(head(hidden, swapped).outputs["logits"], before)


def test_slot_gate_masks_values_beyond_each_slots_candidates() -> None:
    head, hidden, batch, _ = slot_gate_case()
    head.eval()
    output = head(hidden, batch)
    value_logits = output.outputs["value_logits"]
    for slot, size in enumerate(SLOT_VALUE_SIZES):
        assert (value_logits[:, slot, size:] <= -1e3).all()
        assert (value_logits[:, slot, :size] > -1e3).all()
    value = head.predict(output, batch)["value"]
    for slot, size in enumerate(SLOT_VALUE_SIZES):
        if size == 0:
            assert (value[:, slot] == -100).all()
        else:
            assert ((value[:, slot] >= 0) & (value[:, slot] < size)).all()


def test_slot_gate_spans_are_valid_and_inside_the_mask() -> None:
    head, hidden, batch, _ = slot_gate_case(seed=4)
    head.eval()
    batch["span_mask"][1, 3:7] = False
    with torch.no_grad():  # make the untrained span scores spread out
        head.start_proj.weight.mul_(30.0)
        head.end_proj.weight.mul_(30.0)
    prediction = head.predict(head(hidden, batch), batch)
    allowed = batch["span_mask"] & batch["attention_mask"].bool()
    start, end = prediction["span_start"], prediction["span_end"]
    for row in range(3):
        for slot in range(4):
            s, e = start[row, slot].item(), end[row, slot].item()
            assert allowed[row, s] and allowed[row, e]
            assert s <= e < s + head.max_value_length


def test_slot_gate_span_logits_respect_attention_and_span_masks() -> None:
    head, hidden, batch, _ = slot_gate_case()
    head.eval()
    output = head(hidden, batch)
    blocked = ~(batch["span_mask"] & batch["attention_mask"].bool())
    for key in ("start_logits", "end_logits"):
        assert (output.outputs[key].transpose(1, 2)[blocked] <= -1e3).all()


def test_slot_gate_loss_skips_terms_without_targets() -> None:
    head, hidden, batch, _ = slot_gate_case()
    head.eval()
    gate_only = dict(batch)
    gate_only["span_starts"] = torch.full_like(batch["span_starts"], -100)
    gate_only["span_ends"] = torch.full_like(batch["span_ends"], -100)
    gate_only["value_labels"] = torch.full_like(batch["value_labels"], -100)
    output = head(hidden, gate_only)
    expected = torch.nn.functional.cross_entropy(
        output.outputs["gate_logits"].reshape(-1, 5), batch["gate_labels"].reshape(-1)
    )
    assert torch.allclose(output.loss, expected)


def test_slot_gate_with_only_open_slots() -> None:
    head = SlotGateHead(HIDDEN, num_slots=2, value_sizes=[0, 0], dropout=0.0)
    hidden = torch.randn(2, 5, HIDDEN)
    batch = {
        "input_ids": torch.ones(2, 5, dtype=torch.long),
        "attention_mask": torch.ones(2, 5, dtype=torch.long),
    }
    batch["value_labels"] = torch.full((2, 2), -100)
    batch["gate_labels"] = torch.tensor([[0, 4], [4, 1]])
    output = head(hidden, batch)
    assert output.outputs["value_logits"].shape == (2, 2, 0)
    assert torch.isfinite(output.loss)
    assert (head.predict(output, batch)["value"] == -100).all()


# --- registry --------------------------------------------------------------------------------------


def test_registry_names_the_eight_kinds() -> None:
    assert set(HEADS) == {
        "masked_lm",
        "classification",
        "regression",
        "token_tagging",
        "span",
        "biaffine",
        "entity_marker",
        "slot_gate",
    }
    for kind, head_class in HEADS.items():
        assert head_class.kind == kind


@pytest.mark.parametrize(
    ("kind", "kwargs", "head_class"),
    [
        ("classification", {"num_labels": 7}, ClassificationHead),
        ("regression", {}, RegressionHead),
        ("token_tagging", {"num_labels": 13}, TokenTaggingHead),
        ("span", {"max_answer_length": 12}, SpanHead),
        ("biaffine", {"num_labels": 38, "pos_vocab_size": 5}, BiaffineHead),
        ("entity_marker", {"num_labels": 30, "dropout": 0.2}, EntityMarkerHead),
        ("slot_gate", {"num_slots": 3, "value_sizes": [2, 0, 4]}, SlotGateHead),
    ],
)
def test_build_head_constructs_the_registered_class(kind: str, kwargs: dict, head_class: type[Head]) -> None:
    head = build_head(kind, HIDDEN, **kwargs)
    assert type(head) is head_class
    assert head.hidden_size == HIDDEN


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        ("crf", {}, "unknown head kind 'crf'"),
        ("classification", {}, "num_labels"),
        ("classification", {"num_labels": 3, "num_label": 3}, "num_label"),
        ("classification", {"num_labels": 0}, "num_labels must be a positive integer"),
        ("regression", {"num_labels": 1}, "num_labels"),
        ("span", {"max_answer_length": "30"}, "max_answer_length"),
        ("token_tagging", {"num_labels": 5, "dropout": 1.5}, "dropout"),
        ("biaffine", {"num_labels": 4, "pos_vocab_size": -1}, "pos_vocab_size"),
        ("slot_gate", {"num_slots": 3, "value_sizes": [2, 0]}, "value_sizes"),
        ("slot_gate", {"num_slots": 2, "value_sizes": [2, -1]}, "value_sizes"),
    ],
)
def test_build_head_rejects_bad_kind_or_arguments(kind: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_head(kind, HIDDEN, **kwargs)
