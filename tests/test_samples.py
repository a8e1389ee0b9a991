"""The bundled sample files: current with their generator, in the official KLUE formats, internally
consistent, covering the label sets, and not copied from KLUE.

The checks parse the files themselves; they do not reuse the generator's code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mtl.data.labels import (
    DP_DEPRELS,
    DP_POS_TAGS,
    NER_LABELS,
    NLI_LABELS,
    RE_ENTITY_TYPES,
    RE_LABELS,
    YNAT_LABELS,
)
from mtl.errors import KlueInputError
from mtl.samples import ONTOLOGY_PATH, RELATION_LIST_PATH, SAMPLES_DIR, sample_path

SPLITS = ("train", "dev")
NER_HEADER = [
    "## 토큰, 레이블 구분자 : \\t",
    "## 토큰 구분자 : \\n",
    "## 문장 구분자 : \\n\\n",
    "## 주석 : ##",
    "## 컬럼명 : CHAR\tNE_TAG",
]
DP_HEADER = NER_HEADER[:4] + ["## 칼럼명 : INDEX\tWORD_FORM\tLEMMA\tPOS\tHEAD\tDEPREL"]
NER_MARKUP = re.compile(r"<([^<>:]+):([A-Z]{2})>")


def load(task: str, split: str):
    return json.loads(sample_path(task, split).read_text(encoding="utf-8"))


def tsv_blocks(task: str, split: str, header: list[str]) -> list[tuple[str, str, list[list[str]]]]:
    """(guid, header text, rows split on TAB) per sentence of an official NER/DP TSV."""
    text = sample_path(task, split).read_text(encoding="utf-8")
    assert text.endswith("\n\n")
    lines = text.split("\n")
    assert lines[:5] == header
    blocks = []
    for chunk in "\n".join(lines[5:]).strip("\n").split("\n\n"):
        first, *rows = chunk.split("\n")
        assert first.startswith("## ")
        guid, sentence = first[3:].split("\t")
        blocks.append((guid, sentence, [row.split("\t") for row in rows]))
    return blocks


# --- files and paths --------------------------------------------------------------------------------


def test_committed_files_equal_a_fresh_build_in_another_process(tmp_path: Path):
    # A different hash seed would expose any dependence on set or dict-of-set iteration order.
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run(
        [sys.executable, "-m", "mtl.samples.make_samples", "--out", str(tmp_path)],
        check=True,
        env=env,
        capture_output=True,
    )
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert len(fresh) == 18
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (SAMPLES_DIR / name).read_bytes(), name


def test_check_mode_reports_a_stale_file(tmp_path: Path):
    from mtl.samples.make_samples import main, write_samples

    write_samples(tmp_path)
    assert main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "ynat_dev.json").write_text("[]\n", encoding="utf-8")
    assert main(["--check", "--out", str(tmp_path)]) == 1


def test_sample_paths():
    assert sample_path("ner", "train") == SAMPLES_DIR / "ner_train.tsv"
    assert sample_path("wos", "validation") == SAMPLES_DIR / "wos_dev.json"
    for task in ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos"):
        for split in SPLITS:
            assert sample_path(task, split).is_file()
    assert ONTOLOGY_PATH.is_file() and RELATION_LIST_PATH.is_file()
    with pytest.raises(KlueInputError, match="task"):
        sample_path("squad", "train")
    with pytest.raises(KlueInputError, match="split"):
        sample_path("ynat", "test")


# --- per task ---------------------------------------------------------------------------------------


def test_ynat():
    for split in SPLITS:
        rows = load("ynat", split)
        assert 14 <= len(rows) <= 40
        assert len({r["guid"] for r in rows}) == len(rows) == len({r["title"] for r in rows})
        for r in rows:
            assert set(r) == {"guid", "title", "predefined_news_category", "label", "url", "date"}
            assert re.fullmatch(r"ynat-v1_" + split + r"_\d{5}", r["guid"])
            assert r["label"] in YNAT_LABELS and r["predefined_news_category"] in YNAT_LABELS
            assert re.fullmatch(r"\d{4}\.\d{2}\.\d{2}\. 오[전후] \d{1,2}:\d{2}", r["date"])
        assert {r["label"] for r in rows} == set(YNAT_LABELS)


def test_nli():
    for split in SPLITS:
        rows = load("nli", split)
        source_key = "genre" if split == "train" else "source"
        keys = {
            "guid",
            source_key,
            "premise",
            "hypothesis",
            "gold_label",
            "author",
            *(f"label{i}" for i in range(2, 6)),
        }
        assert all(set(r) == keys for r in rows)
        assert len({(r["premise"], r["hypothesis"]) for r in rows}) == len(rows)
        counts = Counter(r["gold_label"] for r in rows)
        assert set(counts) == set(NLI_LABELS) and len(set(counts.values())) == 1  # balanced
        for r in rows:
            votes = Counter(r[k] for k in ("author", "label2", "label3", "label4", "label5"))
            assert votes[r["gold_label"]] >= 3  # gold is the majority of the five votes
            assert set(votes) <= set(NLI_LABELS)


def test_sts():
    for split in SPLITS:
        rows = load("sts", split)
        assert len({(r["sentence1"], r["sentence2"]) for r in rows}) == len(rows)
        for r in rows:
            labels = r["labels"]
            real = labels["real-label"]
            assert 0 <= real <= 5
            assert labels["label"] == round(real, 1)
            assert labels["binary-label"] == (1 if real >= 3.0 else 0)
            scores = r["annotations"]["annotations"]
            assert abs(sum(scores) / len(scores) - real) < 1e-12
        reals = [r["labels"]["real-label"] for r in rows]
        assert {r["labels"]["binary-label"] for r in rows} == {0, 1}
        assert min(reals) < 1.0 and max(reals) > 4.0
    train = [r["labels"]["real-label"] for r in load("sts", "train")]
    assert {int(x) for x in train} >= {0, 1, 2, 3, 4}  # spread over the whole scale


def test_ner():
    types_seen: set[str] = set()
    spaced_entity = False
    for split in SPLITS:
        blocks = tsv_blocks("ner", split, NER_HEADER)
        assert len({guid for guid, _, _ in blocks}) == len(blocks) >= 16
        for guid, annotated, rows in blocks:
            assert re.fullmatch(r"klue-ner-v1_" + split + r"_\d{5}-[a-z]+", guid)
            assert all(len(row) == 2 and len(row[0]) == 1 for row in rows)
            chars, tags = "".join(r[0] for r in rows), [r[1] for r in rows]
            assert set(tags) <= set(NER_LABELS)
            # Rebuild the expected tags from the markup of the header sentence.
            expected: list[str] = []
            position = 0
            for match in NER_MARKUP.finditer(annotated):
                expected += ["O"] * (match.start() - position)
                word, kind = match.groups()
                expected += [f"B-{kind}"] + [f"I-{kind}"] * (len(word) - 1)
                types_seen.add(kind)
                spaced_entity |= " " in word
                position = match.end()
            expected += ["O"] * (len(annotated) - position)
            assert chars == NER_MARKUP.sub(r"\1", annotated)
            assert tags == expected, guid
    assert types_seen == {"PS", "LC", "OG", "DT", "TI", "QT"}
    assert spaced_entity


def test_re():
    assert json.loads(RELATION_LIST_PATH.read_text(encoding="utf-8")) == {"relations": list(RE_LABELS)}
    for split in SPLITS:
        rows = load("re", split)
        assert len({r["guid"] for r in rows}) == len(rows) >= 16
        for r in rows:
            assert list(r) == ["guid", "sentence", "subject_entity", "object_entity", "label", "source"]
            assert r["label"] in RE_LABELS
            for key in ("subject_entity", "object_entity"):
                e = r[key]
                assert list(e) == ["word", "start_idx", "end_idx", "type"]
                assert r["sentence"][e["start_idx"] : e["end_idx"] + 1] == e["word"]  # inclusive end
                assert e["type"] in RE_ENTITY_TYPES
            s, o = r["subject_entity"], r["object_entity"]
            assert s["end_idx"] < o["start_idx"] or o["end_idx"] < s["start_idx"]  # no overlap
    train_labels = Counter(r["label"] for r in load("re", "train"))
    assert len(train_labels) >= 8 and "no_relation" in train_labels


def test_dp():
    deprels_seen: set[str] = set()
    for split in SPLITS:
        blocks = tsv_blocks("dp", split, DP_HEADER)
        assert len(blocks) >= 16
        for guid, sentence, rows in blocks:
            assert re.fullmatch(r"klue-dp-v1_" + split + r"_\d{5}_[A-Za-z]+", guid)
            assert all(len(row) == 6 for row in rows)
            n = len(rows)
            assert [int(r[0]) for r in rows] == list(range(1, n + 1))
            assert " ".join(r[1] for r in rows) == sentence
            heads = [int(r[4]) for r in rows]
            assert all(0 <= h <= n and h != i for i, h in enumerate(heads, 1))
            assert heads.count(0) == 1
            for start in range(1, n + 1):  # following heads from any word reaches the root: no cycle
                node, steps = start, 0
                while node != 0:
                    node, steps = heads[node - 1], steps + 1
                    assert steps <= n, f"cycle in {guid}"
            for _, _, lemma, pos, _, deprel in rows:
                tags = pos.split("+")
                assert set(tags) <= set(DP_POS_TAGS)
                assert len(lemma.split(" ")) == len(tags)
                assert deprel in DP_DEPRELS
                deprels_seen.add(deprel)
    assert len(deprels_seen) >= 10


def test_mrc():
    for split in SPLITS:
        doc = load("mrc", split)
        assert list(doc) == ["data"]
        questions = []
        for article in doc["data"]:
            assert {"title", "news_category", "source", "paragraphs"} <= set(article)
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    questions.append(qa)
                    assert qa["is_impossible"] == (qa["answers"] == []) == (qa["question_type"] == 3)
                    spans = qa["answers"] + qa.get("plausible_answers", [])
                    assert spans, qa["guid"]
                    for a in spans:
                        assert context[a["answer_start"] : a["answer_start"] + len(a["text"])] == a["text"]
                    if qa["is_impossible"]:
                        assert qa["plausible_answers"]
                    else:
                        assert "plausible_answers" not in qa
        assert len({qa["guid"] for qa in questions}) == len(questions) >= 16
        impossible = sum(qa["is_impossible"] for qa in questions) / len(questions)
        assert 0.2 <= impossible <= 0.3
        two_golds = [qa for qa in questions if len(qa["answers"]) == 2]
        assert two_golds and all(
            qa["answers"][0]["answer_start"] == qa["answers"][1]["answer_start"] for qa in two_golds
        )
        longest = max(len(p["context"]) for a in doc["data"] for p in a["paragraphs"])
        assert longest > 800  # one context needs several 512-token windows with a character-level vocabulary


def test_wos_dialogues_and_ontology():
    ontology = json.loads(ONTOLOGY_PATH.read_text(encoding="utf-8"))
    assert len(ontology) == 45
    assert all(
        values[:2] == ["none", "dontcare"] and len(set(values)) == len(values) for values in ontology.values()
    )
    values_seen: Counter[str] = Counter()
    domains_seen: set[str] = set()
    for split in SPLITS:
        dialogues = load("wos", split)
        assert len({d["guid"] for d in dialogues}) == len(dialogues) >= 12
        for d in dialogues:
            assert re.fullmatch(r"wos-v1_" + split + r"_\d{5}", d["guid"])
            turns = d["dialogue"]
            assert [t["role"] for t in turns] == ["user", "sys"] * (len(turns) // 2)
            assert 3 <= len(turns) // 2 <= 6
            previous: set[str] = set()
            for turn in turns:
                if turn["role"] == "sys":
                    assert set(turn) == {"role", "text"}
                    continue
                state = turn["state"]
                assert len(set(state)) == len(state)
                assert previous <= set(state), d["guid"]  # cumulative
                previous = set(state)
                for item in state:
                    domain, slot, value = item.split("-", 2)
                    assert value in ontology[f"{domain}-{slot}"] and value != "none"
                    assert domain in d["domains"]
                    values_seen[value] += 1
                    domains_seen.add(domain)
    assert {"dontcare", "yes", "no"} <= set(values_seen)
    assert len(domains_seen) >= 4


def test_wos_slot_names_are_the_real_ontology_keys():
    data_dir = os.environ.get("KLUE_DATA_DIR")
    if not data_dir:
        pytest.skip("KLUE_DATA_DIR is not set: cannot compare with the real WoS ontology")
    real = json.loads((Path(data_dir) / "official" / "ontology.json").read_text(encoding="utf-8"))
    ours = json.loads(ONTOLOGY_PATH.read_text(encoding="utf-8"))
    assert list(ours) == list(real)


def _inputs(task: str, split: str) -> list:
    """What a model sees for each example of ``task`` (to compare splits and find conflicting labels)."""
    if task == "ner":
        return [NER_MARKUP.sub(r"\1", sentence) for _, sentence, _ in tsv_blocks("ner", split, NER_HEADER)]
    if task == "dp":
        return [sentence for _, sentence, _ in tsv_blocks("dp", split, DP_HEADER)]
    if task == "mrc":
        return [
            (p["context"], qa["question"])
            for a in load("mrc", split)["data"]
            for p in a["paragraphs"]
            for qa in p["qas"]
        ]
    fields = {
        "ynat": ("title",),
        "nli": ("premise", "hypothesis"),
        "sts": ("sentence1", "sentence2"),
        "re": ("sentence", "subject_entity", "object_entity"),
    }[task]
    return [json.dumps([r[f] for f in fields], ensure_ascii=False) for r in load(task, split)]


@pytest.mark.parametrize("task", ["ynat", "nli", "sts", "ner", "re", "dp", "mrc"])
def test_inputs_are_unique_and_dev_does_not_repeat_train(task: str):
    # Unique inputs mean no two examples can carry conflicting gold, so the train set can be memorised;
    # disjoint splits mean a dev score measures more than memorisation.
    train, dev = _inputs(task, "train"), _inputs(task, "dev")
    assert len(set(train)) == len(train) and len(set(dev)) == len(dev)
    assert not set(train) & set(dev)


# --- not copied from KLUE ---------------------------------------------------------------------------


TEXT_KEYS = frozenset(
    {"title", "premise", "hypothesis", "sentence1", "sentence2", "sentence", "context", "question", "text"}
)


def _texts(obj) -> list[str]:
    """The values of every sentence-bearing key, anywhere in a parsed JSON document."""
    if isinstance(obj, dict):
        return [
            s for k, v in obj.items() for s in ([v] if k in TEXT_KEYS and isinstance(v, str) else _texts(v))
        ]
    if isinstance(obj, list):
        return [s for v in obj for s in _texts(v)]
    return []


def _tsv_headers(path: Path) -> list[str]:
    """The sentence of each '## guid<TAB>sentence' line of an NER/DP TSV, NER markup removed."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [NER_MARKUP.sub(r"\1", line.split("\t", 1)[1]) for line in lines if line.startswith("## klue-")]


def _all_texts(folder: Path) -> list[str]:
    out: list[str] = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".json":
            out.extend(_texts(json.loads(path.read_text(encoding="utf-8"))))
        elif path.suffix == ".tsv":
            out.extend(_tsv_headers(path))
    return out


def _sample_texts() -> set[str]:
    """Every sentence of the samples of 8 characters or more (MRC contexts cut into sentences)."""
    texts = set(_all_texts(SAMPLES_DIR))
    pieces = {piece.strip() for text in texts for piece in re.split(r"(?<=[.!?”])\s", text)}
    return {t for t in texts | pieces if len(t) >= 8}


@pytest.mark.realdata
def test_no_sample_text_occurs_in_the_real_klue_data():
    data_dir = os.environ.get("KLUE_DATA_DIR")
    if not data_dir:
        pytest.skip("KLUE_DATA_DIR is not set: no real KLUE text to compare with")
    haystack = "\n".join(_all_texts(Path(data_dir)))
    ours = _sample_texts()
    assert len(ours) > 300
    leaked = sorted(t for t in ours if t in haystack)
    assert leaked == []
