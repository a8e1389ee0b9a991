"""KLUE-MRC model side: question truncation, context windows, answer targets, n-best decoding.

The contexts and questions are invented for these tests. Real-data tests need KLUE_DATA_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import overfit

from mtl.batching.featurize import featurize
from mtl.batching.prepare import add_task_tokens, setup_task
from mtl.config import EncoderConfig, RunConfig, TaskConfig
from mtl.data.io import write_jsonl
from mtl.evaluation.score_file import score
from mtl.modeling.tokenizer import build_offline_tokenizer
from mtl.samples import sample_path
from mtl.tasks.mrc import MrcTask, best_window_span


def make_task(**settings: Any) -> MrcTask:
    tokenizer = build_offline_tokenizer()
    cfg = RunConfig(
        encoder=EncoderConfig(tokenizer="offline", random_init=True), tasks={"mrc": TaskConfig(**settings)}
    )
    task = setup_task("mrc", cfg, tokenizer)
    add_task_tokens(tokenizer, [task])
    return task  # type: ignore[return-value]


def qa(guid: str, context: str, question: str, *answers: str, at: int = 0) -> dict[str, Any]:
    """A record; each answer is found in ``context`` from character ``at`` on; none = unanswerable."""
    found = [{"text": a, "start": context.index(a, at)} for a in answers]
    return {
        "guid": guid,
        "title": "시험",
        "context": context,
        "question": question,
        "answers": found,
        "is_impossible": not found,
        "plausible_answers": [],
        "question_type": 1 if found else 3,
    }


STORY = (
    "바람초등학교는 1962년 강릉에서 문을 열었다. 첫 교장은 한지우 선생이었다. "
    "학교 뒤편에는 오래된 소나무 숲이 있고, 학생들은 봄마다 숲에서 그림을 그린다. "
    "2015년에는 새 도서관이 지어졌으며 책은 모두 1만 2천 권이다. "
    "도서관 이름은 졸업생 투표로 정해진 '솔빛누리'이다. "
)
# window_overlap: these tests read the run_qa.py meaning (windows share 16 tokens); the baseline's
# step meaning of doc_stride is tested in tests/test_recipe.py.
SETTINGS = {"max_length": 64, "max_query_length": 12, "window_overlap": 16}


def char_offsets(row: dict[str, Any]) -> np.ndarray:
    """[T, 2] context character offsets of a feature's tokens (stored flat)."""
    return np.asarray(row["offsets"]).reshape(-1, 2)


def context_text(row: dict[str, Any], context: str) -> str:
    """The context characters a window covers (from its first to its last context token)."""
    offsets = char_offsets(row)
    inside = offsets[offsets[:, 0] >= 0]
    return context[inside[0, 0] : inside[-1, 1]]


def target_text(row: dict[str, Any], context: str) -> str | None:
    start, end = row["start_positions"], row["end_positions"]
    if (start, end) == (0, 0):
        return None
    offsets = char_offsets(row)
    return context[offsets[start, 0] : offsets[end, 1]]


# -- featurization -------------------------------------------------------------------------------
def test_questions_are_cut_to_max_query_length_tokens():
    task = make_task(max_query_length=5)
    long_q, short_q = "도서관 이름은 누가 어떻게 정했나요?", "누구?"
    cut = task.truncate_questions([long_q, short_q])
    assert cut[1] == short_q
    assert long_q.startswith(cut[0]) and cut[0] != long_q
    assert len(task.tokenizer(cut[0], add_special_tokens=False)["input_ids"]) == 5


def test_windows_cover_the_context_with_the_configured_overlap():
    task = make_task(**SETTINGS)
    question = "도서관 이름은 누가 어떻게 정했나요? 자세히 알려 주세요"
    rec = qa("q0", STORY, question, "솔빛누리")
    feats = featurize(task, [rec], progress=False)
    assert len(feats) > 3  # the story is far longer than one 64-token window
    q_ids = task.tokenizer(task.truncate_questions([question])[0], add_special_tokens=False)["input_ids"]
    assert len(q_ids) == 12
    previous_tail = None
    for row in feats:
        ids, offsets, mask = row["input_ids"], char_offsets(row), np.asarray(row["span_mask"])
        assert len(ids) <= 64 and len(offsets) == len(ids) == len(mask)
        assert ids[: len(q_ids) + 2] == [0, *q_ids, 2] and ids[-1] == 2  # [CLS] q [SEP] ... [SEP]
        assert mask.tolist() == (offsets[:, 0] >= 0).astype(int).tolist()
        assert not mask[: len(q_ids) + 2].any() and not mask[-1]
        context_ids = [i for i, m in zip(ids, mask, strict=True) if m]
        if previous_tail is not None:  # consecutive windows share window_overlap tokens
            assert context_ids[:16] == previous_tail
        previous_tail = context_ids[-16:]
        assert row["example_index"] == 0
    # together the windows cover every non-space character of the context, in order
    covered = "".join(context_text(row, STORY) for row in feats)
    assert set(STORY.replace(" ", "")) <= set(covered)
    assert context_text(feats[0], STORY) == STORY[: len(context_text(feats[0], STORY))]
    assert STORY.rstrip().endswith(context_text(feats[len(feats) - 1], STORY))


def test_targets_mark_the_first_answer_only_where_it_is_wholly_inside_the_window():
    task = make_task(**SETTINGS)
    words = STORY.split()
    records, seen = [], 0
    for i, word in enumerate(words):  # an answer at every word: some straddle a window edge
        start = STORY.index(word, seen)
        seen = start + len(word)
        records.append({**qa(f"w{i}", STORY, "어느 말?"), "answers": [{"text": word, "start": start}],
                        "is_impossible": False})  # fmt: skip
    feats = featurize(task, records, progress=False)
    partial = 0
    for row in feats:
        answer = records[row["example_index"]]["answers"][0]
        offsets = char_offsets(row)
        inside = offsets[offsets[:, 0] >= 0]
        first, last = inside[0, 0], inside[-1, 1]
        a_start, a_end = answer["start"], answer["start"] + len(answer["text"])
        if first <= a_start and a_end <= last:
            assert target_text(row, STORY) == answer["text"]
        else:
            assert (row["start_positions"], row["end_positions"]) == (0, 0)
            partial += a_start < last and a_end > first
    assert partial > 0  # the straddling case was exercised
    hits = {row["example_index"] for row in feats if row["start_positions"] > 0}
    assert hits == set(range(len(records)))  # the overlap puts every answer wholly in some window


def test_first_answer_is_the_target_and_unanswerable_targets_cls():
    task = make_task(**SETTINGS)
    records = [
        qa("a", STORY, "책은 몇 권?", "1만 2천 권", "1만 2천"),
        qa("b", STORY, "교장의 고향은?"),
    ]
    feats = featurize(task, records, progress=False)
    texts = {(row["example_index"], target_text(row, STORY)) for row in feats}
    assert (0, "1만 2천 권") in texts and (0, "1만 2천") not in texts
    assert all(t is None for e, t in texts if e == 1)


def test_unlabeled_records_give_no_targets():
    task = make_task(**SETTINGS)
    rec = {**qa("u", STORY, "언제?"), "is_impossible": False, "question_type": None}
    feats = featurize(task, [rec], progress=False)
    assert "start_positions" not in feats.column_names and "end_positions" not in feats.column_names
    assert len(feats) > 1


def test_collated_batch_feeds_the_span_head():
    import torch

    from mtl.batching.collate import collate

    task = make_task(**SETTINGS)
    feats = featurize(task, [qa("a", STORY, "누가?", "한지우")], progress=False)
    batch = collate(
        feats[:], pad_token_id=1, token_fields=task.token_fields, item_fields=task.item_fields,
        pad_values=task.pad_values, skip_fields=task.meta_fields,
    )  # fmt: skip
    assert "offsets" not in batch
    assert batch["span_mask"].dtype == torch.bool and batch["span_mask"].shape == batch["input_ids"].shape
    assert batch["span_mask"].sum().item() == sum(sum(m) for m in feats["span_mask"])
    assert task.head_kind == "span" and task.head_args() == {"max_answer_length": 30}


def test_overlap_is_capped_for_short_windows_and_impossible_settings_fail_clearly():
    task = make_task(max_length=40, max_query_length=10, doc_stride=128)
    assert task.window_stride() == (40 - 10 - 3) // 2
    feats = featurize(task, [qa("a", STORY, "누가?", "한지우")], progress=False)
    assert len(feats) > 3
    with pytest.raises(ValueError, match="no room for context"):
        make_task(max_length=12, max_query_length=10).window_stride()


def test_empty_context_gives_one_window_with_no_span():
    task = make_task(**SETTINGS)
    rec = qa("e", "", "무엇?")
    feats = featurize(task, [rec], progress=False)
    assert len(feats) == 1 and sum(feats[0]["span_mask"]) == 0
    out = {
        "start_logits": np.zeros(len(feats[0]["input_ids"])),
        "end_logits": np.zeros(len(feats[0]["input_ids"])),
    }
    assert task.decode([rec], feats, [out]) == [{"guid": "e", "answer": ""}]


# -- decoding ------------------------------------------------------------------------------------
def logits_for(row: dict[str, Any], starts: dict[int, float], ends: dict[int, float], cls: float = 0.0):
    """Outputs of a span head: -5 everywhere, given values at token positions; [CLS] gets ``cls`` / 2 each."""
    length = len(row["input_ids"]) + 3  # padded wider than the feature, as in a batch
    s, e = np.full(length, -5.0), np.full(length, -5.0)
    s[0] = e[0] = cls / 2
    s[len(row["input_ids"]) :] = e[len(row["input_ids"]) :] = 50.0  # padding must be trimmed away
    for pos, v in starts.items():
        s[pos] = v
    for pos, v in ends.items():
        e[pos] = v
    return {"start_logits": s.astype(np.float32), "end_logits": e.astype(np.float32)}


def token_of(row: dict[str, Any], char: int) -> int:
    offsets = char_offsets(row)
    return int(np.flatnonzero((offsets[:, 0] <= char) & (char < offsets[:, 1]))[0])


@pytest.fixture(scope="module")
def two_windows():
    task = make_task(**SETTINGS)
    rec = qa("d", STORY, "도서관 이름은?", "솔빛누리")
    feats = featurize(task, [rec], progress=False)
    return task, rec, feats


def test_decode_picks_the_best_span_and_reads_it_from_the_context(two_windows):
    task, rec, feats = two_windows
    row = feats[0]
    a, b = token_of(row, STORY.index("1962년")), token_of(row, STORY.index("1962년") + 4)
    outputs = [logits_for(r, {}, {}, cls=5.0) for r in feats]
    outputs[0] = logits_for(row, {a: 4.0, a + 1: 3.5}, {b: 4.0}, cls=5.0)
    assert task.decode([rec], feats, outputs) == [{"guid": "d", "answer": "1962년"}]
    # a question token with a huge logit is never chosen (the span head masks it; decode checks too)
    outputs[0] = logits_for(row, {2: 100.0, a: 4.0}, {3: 100.0, b: 4.0}, cls=5.0)
    assert task.decode([rec], feats, outputs)[0]["answer"] == "1962년"


def test_null_score_is_the_minimum_over_windows(two_windows):
    task, rec, feats = two_windows
    row = feats[0]
    a, b = token_of(row, STORY.index("강릉")), token_of(row, STORY.index("강릉") + 1)
    outputs = [logits_for(r, {}, {}, cls=20.0) for r in feats]
    outputs[0] = logits_for(row, {a: 3.0}, {b: 3.0}, cls=20.0)
    assert task.decode([rec], feats, outputs)[0]["answer"] == ""  # every window says "no answer" loudly
    outputs[1] = logits_for(feats[1], {}, {}, cls=5.0)  # one window's null score is below the span's 6.0
    assert task.decode([rec], feats, outputs)[0]["answer"] == "강릉"
    outputs[1] = logits_for(feats[1], {}, {}, cls=6.5)
    assert task.decode([rec], feats, outputs)[0]["answer"] == ""


def test_spans_longer_than_max_answer_length_or_reversed_are_skipped():
    task = make_task(max_length=128, max_query_length=12, doc_stride=16, max_answer_length=5)
    rec = qa("m", STORY, "언제?", "1962년")
    feats = featurize(task, [rec], progress=False)
    row = feats[0]
    a = token_of(row, STORY.index("1962년"))
    outputs = [logits_for(r, {}, {}) for r in feats]
    # best pair by score is a..a+7 (8 tokens > 5), next a+8..a+7 (reversed); the valid one is a..a+4
    outputs[0] = logits_for(row, {a: 9.0, a + 8: 8.0}, {a + 7: 9.0, a + 4: 7.0})
    assert task.decode([rec], feats, outputs)[0]["answer"] == "1962년"


def test_best_window_span_on_a_small_array():
    s = np.array([0.0, 5.0, 1.0, 4.0, 0.0])
    e = np.array([0.0, 0.0, 6.0, 2.0, 3.0])
    allowed = np.array([False, True, True, True, True])
    assert best_window_span(s, e, allowed, 30) == (11.0, 1, 2)
    assert best_window_span(s, e, allowed, 1) == (7.0, 2, 2)  # single tokens only: 1+6 beats 5+0, 4+2
    assert best_window_span(s, e, np.zeros(5, bool), 30) is None


def test_a_question_without_features_still_gets_a_row(two_windows):
    task, rec, feats = two_windows
    other = qa("x", STORY, "없는 질문?")
    outputs = [logits_for(r, {}, {}) for r in feats]
    preds = task.decode([rec, other], feats, outputs)
    assert [p["guid"] for p in preds] == ["d", "x"] and preds[1]["answer"] == ""


# -- round trip and long contexts ----------------------------------------------------------------
def oracle_outputs(feats: Any) -> list[dict[str, np.ndarray]]:
    outputs = []
    for row in feats:
        s = np.full(len(row["input_ids"]), -10.0, dtype=np.float32)
        e = s.copy()
        s[row["start_positions"]] = 10.0
        e[row["end_positions"]] = 10.0
        outputs.append({"start_logits": s, "end_logits": e})
    return outputs


def test_round_trip_scores_100():
    task = make_task(**SETTINGS)
    records = [
        qa("r0", STORY, "학교가 문을 연 곳은?", "강릉"),
        qa("r1", STORY, "첫 교장은 누구?", "한지우 선생", "한지우"),
        qa("r2", STORY, "도서관 책은 몇 권인가?", "1만 2천 권"),
        qa("r3", STORY, "도서관 이름은?", "'솔빛누리'"),
        qa("r4", STORY, "학교의 운동장 넓이는?"),
        qa("r5", STORY, "학생들이 그림을 그리는 곳은?", "숲", at=STORY.index("숲에서")),
        qa("r6", "짧은 글이다.", "무엇이 짧은가?", "글"),
    ]
    feats = featurize(task, records, progress=False)
    preds = task.decode(records, feats, oracle_outputs(feats))
    assert [p["answer"] for p in preds] == ["강릉", "한지우 선생", "1만 2천 권", "'솔빛누리'", "", "숲", "글"]
    assert task.compute_metrics(records, preds) == {
        "exact_match": pytest.approx(100.0),
        "rouge_w": pytest.approx(100.0),
    }


def test_a_20000_character_context_is_windowed_and_decoded():
    task = make_task()  # baseline settings: max_length 510, doc_stride 128, max_query_length 64
    filler = "이 문단은 길이를 늘리기 위해 반복되는 평범한 문장으로 이루어져 있다. "
    context = filler * (20_000 // len(filler)) + "마지막 문장에서 보물은 은빛상자 안에 있었다."
    assert len(context) > 20_000
    records = [
        qa("long", context, "보물은 어디에 있었나?", "은빛상자"),
        qa("none", context, "보물의 무게는?"),
    ]
    feats = featurize(task, records, progress=False)
    per_question = len(feats) // 2
    assert per_question > 40  # ~17,000 tokens / ~315 new tokens per window
    assert max(len(ids) for ids in feats["input_ids"]) <= 510
    preds = task.decode(records, feats, oracle_outputs(feats))
    assert preds == [{"guid": "long", "answer": "은빛상자"}, {"guid": "none", "answer": ""}]
    rng = np.random.default_rng(0)
    noisy = [
        {k: rng.normal(size=len(v)).astype(np.float32) for k, v in o.items()} for o in oracle_outputs(feats)
    ]
    assert all(isinstance(p["answer"], str) for p in task.decode(records, feats, noisy))


# -- training ------------------------------------------------------------------------------------
def test_overfit_bundled_train_samples():
    records = MrcTask().read(sample_path("mrc", "train"))
    metrics, preds = overfit(
        "mrc", records, steps=150, lr=3e-3, batch_size=16, max_length=128, max_query_length=32, doc_stride=32
    )
    assert len(preds) == len(records)
    assert metrics["exact_match"] >= 95.0, metrics


# -- real data -----------------------------------------------------------------------------------
def real_file(name: str) -> Path:
    root = os.environ.get("KLUE_DATA_DIR")
    if not root:
        pytest.skip("KLUE_DATA_DIR is not set (it names the folder with official/ KLUE files)")
    return Path(root) / "official" / name


@pytest.mark.realdata
def test_real_dev_featurizes_and_random_outputs_score(tmp_path):
    gold_path = real_file("klue-mrc-v1_dev.subset.json")
    # The offline tokenizer has one token per character, so a 30-token limit would cut the few long
    # gold answers (up to ~90 characters) that a perfect head must recover here.
    task = make_task(max_answer_length=100)
    records = task.read(gold_path)
    feats = featurize(task, records, progress=False)
    assert set(feats["example_index"]) == set(range(len(records)))
    assert max(len(ids) for ids in feats["input_ids"]) <= 510
    oracle = task.decode(records, feats, oracle_outputs(feats))
    # with the character-level offline tokenizer a perfect head recovers every first answer
    assert task.compute_metrics(records, oracle)["exact_match"] == pytest.approx(100.0)
    rng = np.random.default_rng(0)
    outputs = [
        {"start_logits": rng.normal(size=len(ids)).astype(np.float32),
         "end_logits": rng.normal(size=len(ids)).astype(np.float32)}
        for ids in feats["input_ids"]
    ]  # fmt: skip
    preds = task.decode(records, feats, outputs)
    pred_path = tmp_path / "mrc.jsonl"
    write_jsonl(pred_path, preds)
    result = score("mrc", gold_path, pred_path)
    assert result["n"] == len(records)
    assert 0.0 <= result["metrics"]["exact_match"] < 50.0
