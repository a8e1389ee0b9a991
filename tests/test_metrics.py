"""The official KLUE metrics: hand-computed cases, edge cases, and randomized comparisons with the
sklearn/seqeval/scipy reference implementations in reference_metrics.py."""

from __future__ import annotations

import string
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_metrics import (
    brute_force_lccs,
    ref_accuracy,
    ref_dp,
    ref_macro_f1,
    ref_mrc,
    ref_ner,
    ref_normalize,
    ref_re,
    ref_sts,
    ref_wos,
)
from seqeval.scheme import IOB2, Entities

from mtl.data.labels import NER_LABELS, RE_LABELS
from mtl.metrics import (
    accuracy,
    dp_metrics,
    macro_f1,
    mrc_metrics,
    ner_metrics,
    normalize_answer,
    re_metrics,
    sts_metrics,
    wos_metrics,
)
from mtl.metrics.mrc import longest_common_substring
from mtl.metrics.ner import ENTITY_TYPES, strict_iob2_entities
from mtl.metrics.re import pr_auc

TAG_ID = {tag: i for i, tag in enumerate(NER_LABELS)}


def assert_close(ours: dict[str, float], reference: dict[str, float]) -> None:
    assert ours.keys() == reference.keys()
    for key in ours:
        assert isinstance(ours[key], float)
        assert ours[key] == pytest.approx(reference[key], abs=1e-9), key


def test_metrics_package_does_not_import_torch_sklearn_or_scipy() -> None:
    code = (
        "import sys, mtl.metrics; print(sorted({'torch', 'sklearn', 'scipy', 'seqeval'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- classification ------------------------------------------------------------------------------


def test_macro_f1_hand_case() -> None:
    # class 0: tp 1, gold 2, pred 1 -> 2/3;  class 1: tp 2, gold 2, pred 3 -> 4/5
    # class 2: gold only -> 0;  class 3: pred only -> 0;  mean over 4 classes = (2/3 + 4/5) / 4
    gold = [0, 0, 1, 1, 2]
    pred = [0, 1, 1, 1, 3]
    assert macro_f1(gold, pred) == pytest.approx((2 / 3 + 4 / 5) / 4 * 100)
    assert accuracy(gold, pred) == pytest.approx(60.0)


def test_macro_f1_averages_only_classes_seen() -> None:
    # labels 0..6 exist, but only 2 and 5 occur: two perfect classes
    assert macro_f1([2, 5, 5], [2, 5, 5]) == 100.0
    assert macro_f1(np.array([2, 5]), np.array([5, 2])) == 0.0


@pytest.mark.parametrize("metric", [macro_f1, accuracy])
def test_classification_rejects_bad_input(metric) -> None:
    with pytest.raises(ValueError, match="1 predictions"):
        metric([0, 1], [0])
    with pytest.raises(ValueError, match="nothing to score"):
        metric([], [])
    with pytest.raises(ValueError, match="integers"):
        metric([0.5, 1.0], [0.5, 1.0])


def test_classification_matches_sklearn_on_random_labels() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        k = int(rng.integers(1, 8))
        gold = rng.integers(0, k, n)
        pred = np.where(rng.random(n) < 0.6, gold, rng.integers(0, k + 2, n))
        assert macro_f1(gold, pred) == pytest.approx(ref_macro_f1(gold, pred), abs=1e-9)
        assert accuracy(gold.tolist(), pred.tolist()) == pytest.approx(ref_accuracy(gold, pred), abs=1e-9)


# --- STS -----------------------------------------------------------------------------------------


def test_sts_hand_cases() -> None:
    # centred gold (-1, 0, 1), pred (-1, 1, 0): r = 1 / (sqrt 2 * sqrt 2) = 0.5
    assert sts_metrics([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])["pearsonr"] == pytest.approx(50.0)
    assert sts_metrics([1, 2, 3, 4], [2, 4, 6, 8])["pearsonr"] == pytest.approx(100.0)
    assert sts_metrics([1, 2, 3, 4], [8, 6, 4, 2])["pearsonr"] == pytest.approx(-100.0)
    # gold positives: 3.0 (>= counts) and 4.2; pred positives: 3.0 and 5.0; tp = 1 -> 2*1/(2+2)
    assert sts_metrics([0.5, 3.0, 4.2, 2.9], [3.0, 2.99, 5.0, 1.0])["f1"] == pytest.approx(50.0)
    # raw predictions are not clipped: 7.0 is a positive
    assert sts_metrics([4.0, 1.0], [7.0, -2.0])["f1"] == pytest.approx(100.0)


def test_sts_undefined_cases() -> None:
    # constant predictions: Pearson is undefined (scipy NaN); reported as 0.0
    # F1: gold positive only 4.0, pred positive all three -> tp 1 -> 2 * 1 / (1 + 3)
    assert sts_metrics([1.0, 2.0, 4.0], [3.0, 3.0, 3.0]) == {"pearsonr": 0.0, "f1": pytest.approx(50.0)}
    assert sts_metrics([2.5], [3.5])["pearsonr"] == 0.0  # a single pair has no correlation
    assert sts_metrics([1.0, 4.0], [4.0, 1.0])["f1"] == 0.0  # no true positive
    assert sts_metrics([1.0, 2.0], [1.0, 2.0])["f1"] == 0.0  # no positive at all
    with pytest.raises(ValueError, match="non-finite|NaN"):
        sts_metrics([1.0, 2.0], [1.0, float("nan")])
    with pytest.raises(ValueError, match="nothing to score"):
        sts_metrics([], [])
    with pytest.raises(ValueError, match="2 gold"):
        sts_metrics([1.0, 2.0], [1.0])


def test_sts_matches_scipy_and_sklearn_on_random_scores() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(3, 60))
        gold = rng.uniform(0, 5, n)
        pred = gold + rng.normal(0, rng.uniform(0.1, 3), n)
        assert_close(sts_metrics(gold.tolist(), pred.tolist()), ref_sts(gold, pred))


def test_sts_pearson_is_computed_in_float64() -> None:
    rng = np.random.default_rng(2)
    gold = rng.uniform(0, 5, 500)
    pred = gold + rng.normal(0, 0.3, 500)
    exact = np.corrcoef(gold.astype(np.longdouble), pred.astype(np.longdouble))[0, 1] * 100
    # float32 input is upcast: scoring float32 arrays equals scoring their float64 values
    g32, p32 = gold.astype(np.float32), pred.astype(np.float32)
    assert sts_metrics(g32, p32)["pearsonr"] == sts_metrics(g32.astype(float), p32.astype(float))["pearsonr"]
    assert sts_metrics(gold, pred)["pearsonr"] == pytest.approx(float(exact), abs=1e-10)


# --- NER -----------------------------------------------------------------------------------------


def test_ner_hand_case_stray_inside_tag() -> None:
    # "가나 다라마": the space and its tag are dropped; scored = O + 5 tags + O
    text = "가나 다라마"
    gold = ["B-PS", "I-PS", "O", "B-LC", "I-LC", "O"]
    pred = ["B-PS", "I-PS", "O", "I-LC", "I-LC", "O"]
    scores = ner_metrics([text], [gold], [pred])
    # entities: PS matched (F1 1); the predicted LC starts with a stray I- and is no entity (F1 0)
    assert scores["entity_f1"] == pytest.approx(50.0)
    # positions: gold O B-PS I-PS B-LC I-LC O O / pred O B-PS I-PS I-LC I-LC O O
    # O 1, B-PS 1, I-PS 1, B-LC 0, I-LC 2*1/(1+2) = 2/3, the 8 absent labels 1 each -> (11 + 2/3) / 13
    assert scores["char_f1"] == pytest.approx((11 + 2 / 3) / 13 * 100)


def test_ner_entity_starting_on_a_space_vanishes_from_gold() -> None:
    # chars 가 ' ' 나 ' ' 다: gold QT begins on the space, so after dropping it 나 is a stray I-QT
    text = "가 나 다"
    gold = ["B-PS", "B-QT", "I-QT", "O", "O"]
    pred = ["B-PS", "O", "B-QT", "O", "O"]
    # gold entities {PS}; pred {PS, QT}: PS F1 1, QT only predicted -> 0; macro over 2 types
    assert ner_metrics([text], [gold], [pred])["entity_f1"] == pytest.approx(50.0)
    # the gold tagging scored against itself is perfect even though its QT entity vanished
    assert ner_metrics([text], [gold], [gold]) == {"entity_f1": pytest.approx(100.0), "char_f1": 100.0}


def test_ner_sentences_are_wrapped_so_entities_do_not_cross() -> None:
    # sentence 1 ends in B-PS, sentence 2 starts with I-PS: the O between them keeps them apart
    texts = ["가", "나"]
    gold = [["B-PS"], ["I-PS"]]
    pred = [["B-PS"], ["B-PS"]]
    # gold {PS(1,2)}; pred {PS(1,2), PS(4,5)}: P = 1/2, R = 1 -> F1 2/3
    assert ner_metrics(texts, gold, pred)["entity_f1"] == pytest.approx(200 / 3)


def test_ner_without_any_entity_scores_zero() -> None:
    # seqeval gives NaN when neither side has an entity; we report 0.0 (documented choice)
    scores = ner_metrics(["가나"], [["O", "O"]], [["O", "O"]])
    assert scores == {"entity_f1": 0.0, "char_f1": 100.0}


def test_ner_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="sentence 0: 2 characters but 1 pred tags"):
        ner_metrics(["가나"], [["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="unknown pred tag 'B-XX'"):
        ner_metrics(["가 나"], [["O", "O", "O"]], [["O", "B-XX", "O"]])
    with pytest.raises(ValueError, match="1 sentences but 2 gold"):
        ner_metrics(["가"], [["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="nothing to score"):
        ner_metrics([], [], [])


def test_strict_chunker_hand_sequence() -> None:
    tags = ["B-PS", "I-PS", "I-PS", "I-LC", "B-LC", "B-LC", "I-LC", "O", "I-DT", "I-DT", "B-DT", "O", "I-DT"]
    got = strict_iob2_entities(np.array([TAG_ID[t] for t in tags]))
    ps, lc, dt = (ENTITY_TYPES.index(x) for x in ("PS", "LC", "DT"))
    # B-PS I-PS I-PS | stray I-LC | B-LC | B-LC I-LC | O | stray I-DT I-DT | B-DT | O | stray I-DT
    assert got.tolist() == [[0, 3, ps], [4, 5, lc], [5, 7, lc], [10, 11, dt]]
    assert strict_iob2_entities(np.array([], dtype=np.int64)).shape == (0, 3)


def _seqeval_entities(tags: list[str]) -> set[tuple[str, int, int]]:
    return {(e.tag, e.start, e.end) for e in Entities([tags], IOB2).entities[0]}


def _ours(tags: list[str]) -> set[tuple[str, int, int]]:
    rows = strict_iob2_entities(np.array([TAG_ID[t] for t in tags], dtype=np.int64))
    return {(ENTITY_TYPES[t], int(s), int(e)) for s, e, t in rows}


def test_strict_chunker_matches_seqeval_on_random_sequences() -> None:
    # few types and no bias towards O, so stray I-, I- of another type after B-, B- B- ... abound
    rng = np.random.default_rng(3)
    alphabet = ["O", "B-PS", "I-PS", "B-LC", "I-LC", "I-OG"]
    for _ in range(1500):
        tags = [alphabet[i] for i in rng.integers(0, len(alphabet), int(rng.integers(1, 25)))]
        assert _ours(tags) == _seqeval_entities(tags), tags


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(NER_LABELS), min_size=1, max_size=40))
def test_strict_chunker_matches_seqeval_on_any_tag_sequence(tags: list[str]) -> None:
    assert _ours(tags) == _seqeval_entities(tags)


def _random_sentence(rng: np.random.Generator) -> tuple[str, list[str]]:
    n = int(rng.integers(1, 30))
    text = "".join(rng.choice(list("가나다라 마바"), n))
    weights = np.full(len(NER_LABELS), 0.4 / (len(NER_LABELS) - 1))
    weights[TAG_ID["O"]] = 0.6
    tags = [NER_LABELS[i] for i in rng.choice(len(NER_LABELS), n, p=weights)]
    return text, tags


def test_ner_matches_seqeval_and_sklearn_on_random_corpora() -> None:
    rng = np.random.default_rng(4)
    for _ in range(150):
        sentences = [_random_sentence(rng) for _ in range(int(rng.integers(1, 6)))]
        texts = [s for s, _ in sentences]
        gold = [t for _, t in sentences]
        pred = [[tag if rng.random() < 0.7 else NER_LABELS[rng.integers(0, 13)] for tag in t] for t in gold]
        ours = ner_metrics(texts, gold, pred)
        reference = ref_ner(texts, gold, pred)
        if np.isnan(reference["entity_f1"]):  # neither side has an entity: our documented 0.0
            reference["entity_f1"] = 0.0
        assert_close(ours, reference)


# --- RE ------------------------------------------------------------------------------------------


def test_re_micro_f1_hand_case() -> None:
    # tp: index 1 only; gold relations 3 (idx 1,2,3); predicted relations 3 (idx 0,1,3) -> 2/6
    probs = np.full((4, 30), 1 / 30)
    assert re_metrics([0, 1, 2, 1], [1, 1, 0, 2], probs)["micro_f1"] == pytest.approx(100 / 3)
    # only no_relation anywhere: 0/0 -> 0
    assert re_metrics([0, 0], [0, 0], np.full((2, 30), 1 / 30))["micro_f1"] == 0.0


def test_pr_auc_hand_cases() -> None:
    # scores desc: P N P N -> points (R, P): (.5, 1) (.5, .5) (1, 2/3) (1, .5) + anchor (0, 1)
    # trapezoids: [0 -> .5] at heights 1,1 = .5; [.5 -> 1] at heights .5, 2/3 = .5 * 7/12
    area = pr_auc(np.array([True, False, True, False]), np.array([0.9, 0.8, 0.7, 0.1]))
    assert area == pytest.approx(0.5 + 7 / 24)
    # one tied threshold: (R 1, P .5) and the anchor (0, 1) -> (1 + .5) / 2
    assert pr_auc(np.array([True, False]), np.array([0.5, 0.5])) == pytest.approx(0.75)
    # no positive: recall is 1 at every threshold -> the triangle under (0, 1)-(1, 0)
    assert pr_auc(np.array([False, False, False]), np.array([0.3, 0.1, 0.2])) == pytest.approx(0.5)


def test_re_auprc_perfect_and_absent_classes() -> None:
    assert re_metrics(list(range(30)), list(range(30)), np.eye(30)) == {"micro_f1": 100.0, "auprc": 100.0}
    # gold uses classes 0 and 1 only; their columns separate perfectly (1.0), the 28 others 0.5
    gold = [0, 1, 0, 1]
    result = re_metrics(gold, gold, np.eye(30)[gold])
    assert result["auprc"] == pytest.approx((2 * 1.0 + 28 * 0.5) / 30 * 100)


def test_re_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        re_metrics([0, 1], [0, 1], np.zeros((2, 29)))
    with pytest.raises(ValueError, match=r"\[0, 30\)"):
        re_metrics([0, 30], [0, 1], np.zeros((2, 30)))
    with pytest.raises(ValueError, match="NaN"):
        re_metrics([0, 1], [0, 1], np.full((2, 30), np.nan))


def test_re_matches_sklearn_on_random_predictions() -> None:
    rng = np.random.default_rng(5)
    for _ in range(40):
        n = int(rng.integers(2, 120))
        k = int(rng.integers(2, 31))  # classes beyond k never occur in gold
        gold = rng.integers(0, k, n)
        logits = rng.normal(0, 1, (n, 30))
        logits[np.arange(n), gold] += rng.uniform(0, 3)
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        probs = np.round(probs, int(rng.integers(1, 4)))  # ties, as coarse scores produce
        pred = probs.argmax(1)
        assert_close(re_metrics(gold.tolist(), pred.tolist(), probs), ref_re(gold, pred, probs))
    assert len(RE_LABELS) == 30


# --- DP ------------------------------------------------------------------------------------------


def test_dp_hand_case() -> None:
    # word 3 has a wrong head; deprels 20 and 16 both fall into OTHERS (ids >= 15)
    gold_heads, gold_rels = [[2, 0, 2]], [[3, 2, 20]]
    pred_heads, pred_rels = [[2, 0, 1]], [[3, 2, 16]]
    scores = dp_metrics(gold_heads, gold_rels, pred_heads, pred_rels)
    # uas classes {0,1,2}: head 2 tp1/gold2/pred1 -> 2/3, head 0 -> 1, head 1 pred only -> 0
    assert scores["uas"] == pytest.approx((2 / 3 + 1) / 3 * 100)
    assert scores["uas_plain"] == pytest.approx(200 / 3)
    # las classes {3, 2, OTHERS, head-wrong}: 1, 1, 0 (gold only), 0 (pred only)
    assert scores["las"] == pytest.approx(50.0)
    assert scores["las_plain"] == pytest.approx(200 / 3)


def test_dp_others_labels_match_each_other() -> None:
    scores = dp_metrics([[0, 1]], [[20, 2]], [[0, 1]], [[16, 2]])
    assert scores == {"uas": 100.0, "las": 100.0, "uas_plain": 100.0, "las_plain": 100.0}


def test_dp_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="sentence 0: 2 gold words but 1 in pred_heads"):
        dp_metrics([[0, 1]], [[1, 2]], [[0]], [[1, 2]])
    with pytest.raises(ValueError, match="1 gold sentences but 2 in pred_deprels"):
        dp_metrics([[0]], [[1]], [[0]], [[1], [2]])
    with pytest.raises(ValueError, match="deprel"):
        dp_metrics([[0]], [[38]], [[0]], [[1]])
    with pytest.raises(ValueError, match="heads"):
        dp_metrics([[0]], [[1]], [[-1]], [[1]])
    with pytest.raises(ValueError, match="nothing to score"):
        dp_metrics([[]], [[]], [[]], [[]])


def test_dp_matches_sklearn_on_random_parses() -> None:
    rng = np.random.default_rng(6)
    for _ in range(60):
        lengths = rng.integers(1, 12, int(rng.integers(1, 8)))
        gold_heads = [rng.integers(0, n + 1, n).tolist() for n in lengths]
        gold_rels = [
            rng.choice(38, n, p=np.r_[np.full(15, 0.9 / 15), np.full(23, 0.1 / 23)]).tolist() for n in lengths
        ]
        pred_heads = [
            [h if rng.random() < 0.8 else int(rng.integers(0, len(s) + 1)) for h in s] for s in gold_heads
        ]
        pred_rels = [[d if rng.random() < 0.8 else int(rng.integers(0, 38)) for d in s] for s in gold_rels]
        assert_close(
            dp_metrics(gold_heads, gold_rels, pred_heads, pred_rels),
            ref_dp(gold_heads, gold_rels, pred_heads, pred_rels),
        )


# --- MRC -----------------------------------------------------------------------------------------


def test_normalize_answer() -> None:
    assert normalize_answer("《훈민정음》 (주)삼성") == "《훈민정음》 주삼성"
    assert normalize_answer("  Hello,   World! ") == "hello world"
    assert normalize_answer("“인용”·…〈책〉") == "“인용”·…〈책〉"  # non-ASCII marks stay
    # the baseline regex does fire on a quote followed by the literal ()‘’ : it becomes a space
    assert normalize_answer("a'()‘’b") == "a b"
    assert normalize_answer("a'()b") == "ab"


def test_mrc_hand_cases() -> None:
    # best of two golds; "서울시청" vs "서울특별시": LCCS "서울" = 2, P = 2/4, R = 2/5 -> 2PR/(P+R) = 4/9
    scores = mrc_metrics([["서울특별시", "서울"], ["서울특별시"]], ["서울", "서울시청"])
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["rouge_w"] == pytest.approx((1 + 4 / 9) / 2 * 100)
    # spaces count in the LCCS: "a b" vs "a bc" -> L 3, P 1, R 3/4 -> 6/7
    assert mrc_metrics([["a bc"]], ["a b"])["rouge_w"] == pytest.approx(600 / 7)


def test_mrc_unanswerable_and_empty() -> None:
    assert mrc_metrics([[]], [""]) == {"exact_match": 100.0, "rouge_w": 100.0}
    assert mrc_metrics([[]], ["무언가"]) == {"exact_match": 0.0, "rouge_w": 0.0}
    assert mrc_metrics([["정답"]], [""]) == {"exact_match": 0.0, "rouge_w": 0.0}
    # a gold that normalises to "" behaves like an unanswerable one
    assert mrc_metrics([["..."]], ["!"]) == {"exact_match": 100.0, "rouge_w": 100.0}
    with pytest.raises(ValueError, match="2 questions but 1"):
        mrc_metrics([[], []], [""])
    with pytest.raises(ValueError, match="nothing to score"):
        mrc_metrics([], [])


def test_lccs_is_the_true_maximum_on_long_answers() -> None:
    # difflib's autojunk ignores frequent characters (spaces here) for golds of >= 200 characters
    gold = "가 나 " * 60 + "다라"
    pred = gold[:150]
    assert longest_common_substring(pred, gold) == 150
    assert longest_common_substring(pred + "X" + gold[-30:], gold) == 150


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="가나다 ab", max_size=30), st.text(alphabet="가나다 ab", max_size=30))
def test_lccs_matches_brute_force(a: str, b: str) -> None:
    assert longest_common_substring(a, b) == brute_force_lccs(a, b)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="AbC가 \t'\"《》<>〈〉()‘’.,!-" + string.punctuation[:5], max_size=25))
def test_normalize_matches_reference(text: str) -> None:
    assert normalize_answer(text) == ref_normalize(text)


def test_mrc_matches_reference_on_random_answers() -> None:
    rng = np.random.default_rng(7)
    alphabet = list("가나다라 .,()AB")

    def word() -> str:
        return "".join(rng.choice(alphabet, int(rng.integers(0, 12))))

    golds = [[word() for _ in range(int(rng.integers(0, 4)))] for _ in range(300)]
    preds = [word() for _ in range(300)]
    assert_close(mrc_metrics(golds, preds), ref_mrc(golds, preds))


# --- WoS -----------------------------------------------------------------------------------------


def test_wos_hand_cases() -> None:
    golds = [["관광-이름-a", "식당-지역-b"], [], ["택시-도착지-c"], []]
    preds = [["식당-지역-b", "관광-이름-a"], [], ["택시-도착지-d"], ["숙소-주차 가능-yes"]]
    # turns: exact (order ignored) / both empty / wrong value / spurious item on an empty gold
    assert wos_metrics(golds, preds) == {"joint_goal_accuracy": 50.0, "slot_f1": 50.0}
    # tp 2, fn 1, fp 2: P 1/2, R 2/3 -> F1 4/7
    assert wos_metrics([["a", "b", "c"]], [["a", "b", "d", "e"]])["slot_f1"] == pytest.approx(400 / 7)


def test_wos_duplicates() -> None:
    # a duplicated gold item counts each time it is found: tp 2, fn 1 -> P 1, R 2/3 -> F1 4/5
    assert wos_metrics([["a", "a", "b"]], [["a"]]) == {
        "joint_goal_accuracy": 0.0,
        "slot_f1": pytest.approx(80.0),
    }
    # a duplicated prediction that is in gold costs nothing
    assert wos_metrics([["a"]], [["a", "a"]]) == {"joint_goal_accuracy": 100.0, "slot_f1": 100.0}


def test_wos_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="1 gold turns but 2"):
        wos_metrics([[]], [[], []])
    with pytest.raises(ValueError, match="list of strings"):
        wos_metrics(["관광-이름-a"], [["관광-이름-a"]])
    with pytest.raises(ValueError, match="nothing to score"):
        wos_metrics([], [])


def test_wos_matches_reference_on_random_states() -> None:
    rng = np.random.default_rng(8)
    pool = [f"d{i % 3}-s{i}-v{i % 2}" for i in range(8)]

    def state() -> list[str]:
        return [pool[i] for i in rng.integers(0, len(pool), int(rng.integers(0, 5)))]

    golds = [state() for _ in range(400)]
    preds = [g if rng.random() < 0.3 else state() for g in golds]
    assert_close(wos_metrics(golds, preds), ref_wos(golds, preds))
