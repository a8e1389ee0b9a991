"""Very long inputs are cut into windows or truncated, never fed whole to the encoder, and their
predictions keep the contract's shape: a 20,000-character MRC context, a 3,000-character NER
sentence, a 60-turn WoS dialogue. Each goes through featurize -> predict (tiny random model) ->
decode -> the task's own ``check_prediction``.

All texts are invented for these tests.
"""

from __future__ import annotations

import resource
from typing import Any

import numpy as np
from support import tiny_setup

from mtl.data.labels import NER_LABELS
from mtl.evaluation.inference import predict_features
from mtl.samples import SAMPLES_DIR

MAX_LENGTH = 128
# Peak-memory growth allowed for one long input: a windowed 20k-character context needs a few MB; feeding
# it whole to the encoder would need its [T, T] attention scores, gigabytes.
MEMORY_BUDGET_MB = 600


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_long(task_name: str, records: list[dict[str, Any]], **settings: Any) -> tuple[Any, Any, list[dict]]:
    """(task, features, contract predictions) of ``records`` with a tiny model; checks window lengths."""
    before = peak_rss_mb()
    task, model, split = tiny_setup(task_name, records, max_length=MAX_LENGTH, **settings)
    lengths = [len(ids) for ids in split.features["input_ids"]]
    assert max(lengths) <= MAX_LENGTH, f"{task_name}: a feature of {max(lengths)} tokens"
    outputs = predict_features(model, task, split, batch_size=8, progress=False)
    predictions = task.decode(records, split.features, outputs)
    grown = peak_rss_mb() - before
    assert grown < MEMORY_BUDGET_MB, f"{task_name}: peak memory grew by {grown:.0f} MB"
    gold = task.gold_units(records)
    assert {task.key_of(p) for p in predictions} == set(gold), f"{task_name}: not one prediction per unit"
    for p in predictions:
        problem = task.check_prediction(p, gold[task.key_of(p)])
        assert problem is None, f"{task_name} {task.key_of(p)}: {problem}"
    return task, split.features, predictions


def test_mrc_20000_character_context_is_read_in_windows_and_answers_a_string() -> None:
    sentences = [
        f"{i}번째 골목의 빵집은 아침 {i % 12 + 1}시에 문을 열고 저녁에는 동네 사람들이 모여 이야기를 나눈다. "
        for i in range(250)
    ]
    body = "".join(sentences)
    answer = "은빛 나침반"
    context = (body + f"마을 박물관에 전시된 보물의 이름은 {answer}이다. " + body)[:20_000]
    assert len(context) == 20_000 and answer in context
    records = [
        {
            "guid": f"long-mrc-{i}",
            "title": "긴 글",
            "context": context,
            "question": question,
            "answers": [{"text": answer, "start": context.index(answer)}] if i == 0 else [],
            "is_impossible": i == 1,
            "plausible_answers": [],
            "question_type": 1 if i == 0 else 3,
        }
        for i, question in enumerate(
            ["박물관에 전시된 보물의 이름은 무엇인가?", "빵집 주인의 고향은 어디인가?"]
        )
    ]
    _, features, predictions = run_long("mrc", records, doc_stride=32, max_query_length=32)
    windows = np.bincount(np.asarray(features["example_index"]), minlength=2)
    assert (windows > 20).all(), f"the context should span many windows, got {windows}"
    assert [p["guid"] for p in predictions] == ["long-mrc-0", "long-mrc-1"]
    for p in predictions:  # an answer is "" or a piece of the context
        assert p["answer"] == "" or p["answer"] in context


def test_ner_3000_character_sentence_gets_one_tag_per_character() -> None:
    piece, tags = "", []
    for i in range(200):
        for word, entity in (
            (f"{i}일", "DT"),
            (" ", None),
            ("부산에서", None),
            (" ", None),
            ("김하늘이", None),
        ):
            piece += word
            if entity:
                tags += [NER_LABELS.index(f"B-{entity}")] + [NER_LABELS.index(f"I-{entity}")] * (
                    len(word) - 1
                )
            else:
                tags += [NER_LABELS.index("O")] * len(word)
        piece += " 노래했다. "
        tags += [NER_LABELS.index("O")] * len(" 노래했다. ")
    text, tags = piece[:3000], tags[:3000]
    records = [{"guid": "long-ner-0", "text": text, "tags": tags}]
    _, features, predictions = run_long("ner", records)
    assert len(features) > 10, "a 3,000-character sentence needs many windows"
    (prediction,) = predictions
    assert len(prediction["tags"]) == 3000 and all(t in NER_LABELS for t in prediction["tags"])


def test_wos_60_turn_dialogue_predicts_every_user_turn_from_a_truncated_context() -> None:
    areas = ["서울 북쪽", "서울 남쪽", "서울 중앙", "서울 동쪽", "서울 서쪽"]
    dialogue, state = [], []
    for t in range(30):
        area = areas[t % len(areas)]
        state = ["숙소-종류-모텔", f"숙소-지역-{area}"]
        dialogue.append(
            {
                "role": "user",
                "text": f"{t}번째 질문이에요. {area}에 있는 모텔을 다시 찾아 주세요.",
                "state": state,
            }
        )
        dialogue.append(
            {
                "role": "sys",
                "text": f"{area}에는 조용한 모텔이 몇 곳 있어요. 더 필요하신 게 있나요?",
                "state": None,
            }
        )
    assert len(dialogue) == 60
    records = [{"guid": "long-wos-0", "domains": ["숙소"], "dialogue": dialogue}]
    _, features, predictions = run_long("wos", records, ontology=str(SAMPLES_DIR / "ontology.json"))
    assert len(features) == 30
    assert sorted(p["turn"] for p in predictions) == list(range(0, 60, 2))
