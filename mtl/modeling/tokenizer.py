"""Tokenizers: the pretrained one from the hub, or an offline WordPiece built by code.

No hub can be reached where this project is built and tested, and the klue/roberta vocabulary is not
available offline. :func:`build_offline_tokenizer` therefore builds a tokenizer that *behaves* like
klue/roberta's (a BERT WordPiece with ``##`` continuations, the same special-token ids, the same
normaliser settings and ``[CLS] A [SEP] B [SEP]`` pairs) over a character-level vocabulary generated
from Unicode ranges. Its ids are not klue/roberta's, so it only pairs with a randomly initialised
encoder (the offline demo), never with pretrained weights.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from transformers import AutoTokenizer, BertTokenizerFast, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from mtl.errors import KlueInputError

OFFLINE_NAMES: tuple[str, ...] = ("offline", "offline:wordpiece")
"""Tokenizer names that :func:`load_tokenizer` builds locally instead of asking the hub."""

SPECIAL_TOKENS: tuple[str, ...] = ("[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]")
"""Ids 0..4, in klue/roberta's order (bos = [CLS], eos = [SEP], pad = 1 so RoBERTa positions start at 2)."""

CONTINUATION_PREFIX = "##"
MODEL_MAX_LENGTH = 512

# Inclusive code-point ranges of the base vocabulary, in vocabulary order. Printable ASCII comes first
# so that "." lands on id 18 as in klue/roberta. Beyond Hangul and hanja, the list covers the scripts
# and symbols that Korean news, reviews and Wikipedia text use (measured on the KLUE dev sets by
# tests/test_tokenizer.py): Latin with diacritics, Greek, Cyrillic, kana, quotes, bullets, arrows,
# unit squares such as ㎞ and ㎡, circled numbers, full-width forms.
_BASE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0021, 0x007E),  # printable ASCII: punctuation, digits, Latin letters
    (0x00A1, 0x024F),  # Latin-1 supplement, Latin extended A and B
    (0x0370, 0x03FF),  # Greek
    (0x0400, 0x04FF),  # Cyrillic
    (0xAC00, 0xD7A3),  # the 11,172 precomposed Hangul syllables
    (0x3131, 0x318E),  # Hangul compatibility jamo (ㅋㅋ, ㅠㅠ)
    (0x1100, 0x11FF),  # Hangul jamo: NFKC-normalised KLUE v1.1 text turns ㅋ into ᄏ
    (0x2010, 0x205E),  # general punctuation: ‘’“”…·‧ and dashes
    (0x2070, 0x209F),  # superscripts and subscripts
    (0x20A0, 0x20C0),  # currency signs
    (0x2100, 0x218B),  # letterlike symbols and number forms: ℃ ℓ Ⅱ ⅓
    (0x2190, 0x21FF),  # arrows
    (0x2200, 0x22FF),  # mathematical operators: ∼ ≪ ≫ ∙
    (0x2460, 0x24FF),  # enclosed alphanumerics: ① ②
    (0x2500, 0x257F),  # box drawing
    (0x25A0, 0x25FF),  # geometric shapes: ○ ● △ ▲ □ ■ ◆
    (0x2600, 0x26FF),  # miscellaneous symbols: ☆ ★ ♥ ☎
    (0x2700, 0x27BF),  # dingbats
    (0x3000, 0x303F),  # CJK symbols and punctuation: 《》〈〉「」『』【】〔〕～
    (0x3041, 0x30FF),  # hiragana and katakana
    (0x3200, 0x32FF),  # enclosed CJK letters: ㈜
    (0x3300, 0x33FF),  # CJK compatibility: ㎞ ㎡ ㎏
    (0xFF01, 0xFFEE),  # half-width and full-width forms
    (0x4E00, 0x9FFF),  # CJK unified ideographs: hanja in news titles (北, 美, 與)
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
)

# Code points the BERT normaliser surrounds with spaces (``handle_chinese_chars``), so each is a word of
# its own and never needs a ``##`` form. Same ranges as BERT's ``_is_chinese_char``.
_CJK_IDEOGRAPH_RANGES: tuple[tuple[int, int], ...] = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)  # fmt: skip


# Character categories come from the frozen Unicode 3.2 tables that every Python ships, not from the
# running Python's own (newer, version-dependent) tables: a code point assigned in a later Unicode
# version would otherwise enter or leave the vocabulary and shift every id after it.
_UCD = unicodedata.ucd_3_2_0
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zs", "Zl", "Zp"})


def _is_kept(char: str) -> bool:
    """False for controls and spaces, which the BERT normaliser deletes or turns into a space.

    Code points unassigned in Unicode 3.2 are kept: they cost one row each and may be letters today.
    """
    return _UCD.category(char) not in _DROPPED_CATEGORIES


def _always_own_word(char: str) -> bool:
    """True when the pre-tokeniser always splits ``char`` off, so a ``##`` form could never be used.

    BertPreTokenizer splits on ASCII punctuation and on every Unicode ``P*`` character; the normaliser
    isolates CJK ideographs. Skipping their ``##`` forms keeps ~22k unusable rows out of the embedding.
    """
    code = ord(char)
    if code < 0x80 and not char.isalnum():
        return True
    if _UCD.category(char).startswith("P"):
        return True
    return any(lo <= code <= hi for lo, hi in _CJK_IDEOGRAPH_RANGES)


@functools.lru_cache(maxsize=1)
def offline_vocabulary() -> tuple[str, ...]:
    """The offline vocabulary in id order: specials, base characters, then ``##`` continuations.

    Generated from Unicode ranges and the frozen Unicode 3.2 character tables only (nothing downloaded,
    nothing learnt from data), so it is the same on every machine and Python version.
    """
    base: list[str] = []
    seen: set[str] = set()
    for lo, hi in _BASE_RANGES:
        for code in range(lo, hi + 1):
            char = chr(code)
            if char not in seen and _is_kept(char):
                seen.add(char)
                base.append(char)
    continuations = [CONTINUATION_PREFIX + c for c in base if not _always_own_word(c)]
    return (*SPECIAL_TOKENS, *base, *continuations)


def _backend() -> Tokenizer:
    """The ``tokenizers`` pipeline: BERT normaliser, BERT pre-tokeniser, WordPiece, BERT templates."""
    vocab = {token: i for i, token in enumerate(offline_vocabulary())}
    backend = Tokenizer(WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix=CONTINUATION_PREFIX))
    # strip_accents must be False explicitly: it would NFD-decompose Hangul syllables into jamo.
    # (Left as None it follows `lowercase`, which is also False here, but the intent should be visible.)
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # Segment B gets type id 1, exactly as klue/roberta's BertTokenizer does; callers must pass
    # return_token_type_ids=False (type_vocab_size is 1), and offline tests then catch a caller that forgets.
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX)
    return backend


@functools.lru_cache(maxsize=1)
def _backend_json() -> str:
    return _backend().to_str()


def build_offline_tokenizer(out_dir: str | Path | None = None) -> PreTrainedTokenizerFast:
    """Build the offline WordPiece tokenizer (a ``BertTokenizerFast``); save it to ``out_dir`` if given.

    Every call returns a fresh object (callers add entity markers to it), built from an in-process
    cache of the serialised pipeline, so repeated calls are cheap.
    """
    tokenizer = BertTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_backend_json()),
        do_lower_case=False,
        strip_accents=False,
        tokenize_chinese_chars=True,
        model_max_length=MODEL_MAX_LENGTH,
        cls_token="[CLS]",
        pad_token="[PAD]",
        sep_token="[SEP]",
        unk_token="[UNK]",
        mask_token="[MASK]",
    )
    if out_dir is not None:
        tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def load_tokenizer(name_or_path: str, *, offline_ok: bool = True) -> PreTrainedTokenizerBase:
    """Load a tokenizer by hub name or local folder, or build the offline one for ``"offline"``.

    ``offline_ok=False`` rejects the offline names: use it where the tokenizer must match pretrained
    weights. A hub name or folder that cannot be loaded is an input error naming it; there is no silent
    fallback to the offline vocabulary, whose ids would not match a pretrained encoder.
    """
    if name_or_path in OFFLINE_NAMES:
        if not offline_ok:
            raise KlueInputError(
                None,
                None,
                f"tokenizer {name_or_path!r} cannot be used here: a pretrained tokenizer is required",
            )
        return build_offline_tokenizer()
    try:
        return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise KlueInputError(
            name_or_path,
            None,
            f"cannot load tokenizer ({e.__class__.__name__}: {e}). Without network access, use a local "
            f"folder written by save_pretrained, or {OFFLINE_NAMES[0]!r} with a randomly initialised encoder",
        ) from None


#: files ``save_pretrained`` writes for a tokenizer (any one marks a folder as holding its own)
TOKENIZER_FILES: tuple[str, ...] = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "sentencepiece.bpe.model",
    "spiece.model",
)


def folder_tokenizer(name: str) -> bool:
    """True when ``name`` is a local folder that holds tokenizer files (e.g. a saved or exported encoder)."""
    folder = Path(name)
    return folder.is_dir() and any((folder / f).is_file() for f in TOKENIZER_FILES)


def encoder_tokenizer(cfg: Any) -> PreTrainedTokenizerBase:
    """The tokenizer a run pairs with its encoder (``cfg`` is the run's ``EncoderConfig``).

    - random initialisation: ``encoder.tokenizer`` (default ``encoder.name``), the offline one allowed;
    - pretrained weights from a local folder that holds a tokenizer: the folder's own tokenizer
      (e.g. the offline WordPiece a from-scratch run saved). ``encoder.tokenizer`` overrides it only
      on purpose: naming a tokenizer whose vocabulary differs from the folder's is an error;
    - pretrained weights from the hub: ``encoder.tokenizer`` or the hub tokenizer, never the offline
      one (its ids do not match any hub weights).

    With pretrained weights, a vocabulary that does not match the encoder's embedding size is an
    error naming both sizes.
    """
    if cfg.random_init:
        return load_tokenizer(cfg.tokenizer or cfg.name)
    local = Path(cfg.name).is_dir()
    if cfg.tokenizer is None:
        tokenizer = load_tokenizer(cfg.name, offline_ok=False)
    else:
        tokenizer = load_tokenizer(cfg.tokenizer, offline_ok=local)
        if folder_tokenizer(cfg.name):
            own = load_tokenizer(cfg.name)
            if own.get_vocab() != tokenizer.get_vocab():
                raise KlueInputError(
                    None,
                    "encoder.tokenizer",
                    f"{cfg.tokenizer!r} ({len(tokenizer)} tokens) is not the tokenizer saved with the encoder "
                    f"in {cfg.name} ({len(own)} tokens, a different vocabulary); leave encoder.tokenizer "
                    "out to use the folder's own",
                    kind="key",
                )
    check_vocabulary_size(cfg.name, tokenizer)
    return tokenizer


def check_vocabulary_size(encoder_name: str, tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise unless the tokenizer's vocabulary has exactly as many tokens as the encoder's embedding rows.

    An encoder whose config cannot be read is left to the encoder loader, which names what failed.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(encoder_name)
    except (OSError, ValueError):
        return
    rows = getattr(config, "vocab_size", None)
    if rows is not None and rows != len(tokenizer):
        raise KlueInputError(
            encoder_name,
            "encoder.tokenizer",
            f"the tokenizer has {len(tokenizer)} tokens but the encoder's embedding has {rows} rows: "
            "they must be the tokenizer the encoder was trained with",
            kind="key",
        )
