"""The offline WordPiece tokenizer: klue/roberta's special ids and conventions, offsets, save/load,
and its [UNK] rate on the real KLUE dev text."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from mtl.errors import KlueInputError
from mtl.modeling import tokenizer as tokmod
from mtl.modeling.tokenizer import build_offline_tokenizer, load_tokenizer, offline_vocabulary

UNK = 3


@pytest.fixture(scope="module")
def tok():
    return build_offline_tokenizer()


def ids_of(tok, *tokens: str) -> list[int]:
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def test_special_token_ids_match_klue_roberta(tok):
    assert (tok.cls_token_id, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id, tok.mask_token_id) == (
        0,
        1,
        2,
        3,
        4,
    )
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"]
    # klue/roberta's vocabulary continues with printable ASCII: "." is id 18 there (TOKENIZER_NOTES.md).
    assert tok.convert_tokens_to_ids([chr(c) for c in range(0x21, 0x7F)]) == list(range(5, 99))
    assert tok.convert_tokens_to_ids(".") == 18
    assert tok.model_max_length == 512


def test_korean_sentence_is_wordpiece_split_without_unk(tok):
    text = "오늘 바람이 분다."
    enc = tok(text)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tokens == ["[CLS]", "오", "##늘", "바", "##람", "##이", "분", "##다", ".", "[SEP]"]
    assert UNK not in enc["input_ids"]
    assert tok.decode(enc["input_ids"], skip_special_tokens=True) == text


def test_normaliser_keeps_case_and_hangul_syllables(tok):
    # lowercase=False and strip_accents=False: no case folding, and no NFD split of syllables into jamo.
    assert tok.tokenize("KLUE 한글") == ["K", "##L", "##U", "##E", "한", "##글"]
    assert tok.backend_tokenizer.normalizer.normalize_str("Ünï 한국어") == "Ünï 한국어"


def test_jamo_hanja_and_cjk_symbols_are_known(tok):
    text = "ㅋㅋ ᄏᄏ 北韓 《책》 “인용” 3㎞ ① ★ ～"
    enc = tok(text, add_special_tokens=False)
    assert UNK not in enc["input_ids"]
    # Hanja are split one per token (handle_chinese_chars), as BERT does.
    assert tok.tokenize("北韓") == ["北", "韓"]


def test_offsets_point_at_the_characters_of_each_token(tok):
    text = "  한빛전자는 2019년에 ‘누리 X1’을 공개했다!"
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert UNK not in enc["input_ids"]
    for token, (start, end) in zip(tokens, enc["offset_mapping"], strict=True):
        assert text[start:end] == token.removeprefix("##")
    assert enc["offset_mapping"][0] == (2, 3)  # leading spaces are skipped, not counted away


def test_pair_encoding_is_cls_a_sep_b_sep(tok):
    enc = tok("가나", "다라", return_token_type_ids=False)
    assert "token_type_ids" not in enc
    assert enc["input_ids"] == [0, *ids_of(tok, "가", "##나"), 2, *ids_of(tok, "다", "##라"), 2]
    assert enc["attention_mask"] == [1] * 7


def test_truncation_and_padding_use_max_length_and_pad_id(tok):
    long = " ".join(["가나다"] * 400)
    enc = tok(long, truncation=True)
    assert len(enc["input_ids"]) == 512 and enc["input_ids"][-1] == 2
    batch = tok(["가", "가나 다"], padding=True, return_token_type_ids=False)
    assert batch["input_ids"][0][-1] == 1 and batch["attention_mask"][0][-1] == 0


def test_vocabulary_shape():
    vocab = offline_vocabulary()
    assert len(vocab) == len(set(vocab))
    entries = set(vocab)
    syllables = [chr(c) for c in range(0xAC00, 0xD7A4)]
    assert len(syllables) == 11172
    assert all(s in entries and "##" + s in entries for s in syllables)
    assert all(chr(c) in entries for c in range(0x3131, 0x318F))  # compatibility jamo
    assert all(chr(c) in entries and "##" + chr(c) in entries for c in range(0x1100, 0x1200))  # jamo
    assert all(chr(c) in entries for c in range(0x4E00, 0xA000))  # CJK unified ideographs
    assert all(c in entries for c in "“”‘’·…《》〈〉「」『』【】〔〕※△▲▽▼○●◎◇◆□■☆★→←↑↓～")
    # Symbols may continue a word ("3㎞"), so they have ## forms; punctuation and hanja never do,
    # because the pre-tokeniser always splits them off.
    assert "##㎞" in entries and "##★" in entries
    assert "##." not in entries and "##北" not in entries


def test_vocabulary_does_not_depend_on_the_running_pythons_unicode_tables(monkeypatch):
    # Newer Pythons assign more code points; consulting their tables would shift ids between versions.
    reference = offline_vocabulary()

    def unavailable(char: str) -> str:
        raise AssertionError("the vocabulary must not use the running Python's Unicode tables")

    monkeypatch.setattr(tokmod.unicodedata, "category", unavailable)
    tokmod.offline_vocabulary.cache_clear()
    try:
        assert tokmod.offline_vocabulary() == reference
    finally:
        tokmod.offline_vocabulary.cache_clear()


def test_each_call_returns_an_independent_tokenizer():
    first, second = build_offline_tokenizer(), load_tokenizer("offline:wordpiece")
    first.add_special_tokens({"additional_special_tokens": ["<subj>"]})
    assert len(first) == len(second) + 1
    assert second.convert_tokens_to_ids("<subj>") == UNK


def test_a_cold_build_gives_the_warm_tokenizer():
    warm = build_offline_tokenizer().get_vocab()
    tokmod.offline_vocabulary.cache_clear()
    tokmod._backend_json.cache_clear()
    assert build_offline_tokenizer().get_vocab() == warm  # its speed: `klue-mtl bench` (tokenizer_seconds)


def test_save_and_reload_through_auto_tokenizer(tmp_path: Path, tok):
    build_offline_tokenizer(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert load_tokenizer(str(tmp_path)).get_vocab() == tok.get_vocab()
    for text, pair in [("KLUE 한국어 이해 평가 ㅋㅋ 北", None), ("질문입니다?", "문맥 (괄호) 3.5%")]:
        assert loaded(text, pair, return_token_type_ids=False) == tok(text, pair, return_token_type_ids=False)
    assert loaded.model_max_length == 512
    assert loaded.tokenize("AB") == ["A", "##B"]  # still case-preserving after the round trip


def test_load_tokenizer_rejects_offline_when_not_allowed_and_reports_missing_paths(tmp_path: Path):
    with pytest.raises(KlueInputError, match="pretrained tokenizer is required"):
        load_tokenizer("offline", offline_ok=False)
    missing = tmp_path / "no-such-tokenizer"
    with pytest.raises(KlueInputError) as err:
        load_tokenizer(str(missing))
    assert err.value.path == str(missing)


# --- real KLUE dev text -------------------------------------------------------------------------------

_NER_MARKUP = re.compile(r"<([^<>]+):(?:PS|LC|OG|DT|TI|QT)>")


def _json(root: Path, name: str):
    return json.loads((root / name).read_text(encoding="utf-8"))


def _tsv_sentences(path: Path) -> list[str]:
    """The text of each '## guid<TAB>sentence' header line of an official NER/DP TSV."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        guid, tab, sentence = line.partition("\t")
        if line.startswith("## klue-") and tab:
            out.append(sentence)
    return out


def real_dev_texts(root: Path) -> dict[str, list[str]]:
    """Plain text of the real dev set of each task, parsed just enough to tokenize it."""
    mrc = _json(root, "klue-mrc-v1_dev.subset.json")["data"]
    return {
        "ynat": [r["title"] for r in _json(root, "ynat-v1.1_dev.json")],
        "nli": [t for r in _json(root, "klue-nli-v1.1_dev.json") for t in (r["premise"], r["hypothesis"])],
        "sts": [t for r in _json(root, "klue-sts-v1.1_dev.json") for t in (r["sentence1"], r["sentence2"])],
        "ner": [_NER_MARKUP.sub(r"\1", s) for s in _tsv_sentences(root / "klue-ner-v1.1_dev.tsv")],
        "re": [r["sentence"] for r in _json(root, "klue-re-v1.1_dev.json")],
        "dp": _tsv_sentences(root / "klue-dp-v1.1_dev.tsv"),
        "mrc": [
            text
            for article in mrc
            for paragraph in article["paragraphs"]
            for text in [paragraph["context"], *(qa["question"] for qa in paragraph["qas"])]
        ],
        "wos": [turn["text"] for d in _json(root, "wos-v1_dev.subset.json") for turn in d["dialogue"]],
    }


@pytest.mark.realdata
def test_unk_rate_on_real_dev_text_is_below_a_tenth_of_a_percent(tok):
    data_dir = os.environ.get("KLUE_DATA_DIR")
    if not data_dir:
        pytest.skip("KLUE_DATA_DIR is not set: no real KLUE data to measure the [UNK] rate on")
    texts = real_dev_texts(Path(data_dir) / "official")
    total = unknown = 0
    for task, task_texts in texts.items():
        assert len(task_texts) > 500, task
        ids = tok(task_texts, add_special_tokens=False)["input_ids"]
        n = sum(map(len, ids))
        u = sum(seq.count(UNK) for seq in ids)
        print(f"{task}: {u} [UNK] in {n} tokens = {100 * u / n:.4f}%")
        assert u / n < 0.001, task
        total, unknown = total + n, unknown + u
    print(f"all tasks: {unknown} [UNK] in {total} tokens = {100 * unknown / total:.4f}%")
    assert unknown / total < 0.001
