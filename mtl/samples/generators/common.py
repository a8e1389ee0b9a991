"""Shared helpers for the sample generators: seeded RNGs, Korean particles, JSON and span bookkeeping."""

from __future__ import annotations

import json
import random
from typing import Any

SEED = "klue-mtl-samples-v1"

_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3
_RIEUL_FINAL = 8  # index of the final consonant ㄹ in a precomposed syllable
# Final sound of each digit as read in Sino-Korean (영, 일, 이, 삼, 사, 오, 육, 칠, 팔, 구):
# True when it ends in a consonant, "rieul" for ㄹ.
_DIGIT_FINAL: dict[str, bool | str] = {
    "0": True, "1": "rieul", "2": False, "3": True, "4": False,
    "5": False, "6": True, "7": "rieul", "8": "rieul", "9": False,
}  # fmt: skip

# Particle pairs: (form after a consonant, form after a vowel).
_PARTICLES: dict[str, tuple[str, str]] = {
    "은": ("은", "는"), "는": ("은", "는"),
    "이": ("이", "가"), "가": ("이", "가"),
    "을": ("을", "를"), "를": ("을", "를"),
    "과": ("과", "와"), "와": ("과", "와"),
    "으로": ("으로", "로"), "로": ("으로", "로"),
}  # fmt: skip


def rng_for(task: str, split: str) -> random.Random:
    """A generator-private RNG; string seeds hash with SHA-512, so runs and machines agree."""
    return random.Random(f"{SEED}/{task}/{split}")


def _final(word: str) -> bool | str:
    """Whether the last syllable of ``word`` ends in a consonant (``"rieul"`` for ㄹ)."""
    last = word.rstrip()[-1]
    if last in _DIGIT_FINAL:
        return _DIGIT_FINAL[last]
    code = ord(last)
    if not _HANGUL_FIRST <= code <= _HANGUL_LAST:
        raise ValueError(f"cannot choose a particle after {word!r}: it does not end in Hangul or a digit")
    final = (code - _HANGUL_FIRST) % 28
    if final == 0:
        return False
    return "rieul" if final == _RIEUL_FINAL else True


def takes_particle(word: str) -> bool:
    """Whether :func:`particle` knows how to follow ``word`` (it ends in Hangul or a digit)."""
    try:
        _final(word)
    except ValueError:
        return False
    return True


def particle(word: str, name: str) -> str:
    """The allomorph of particle ``name`` (given in either form, e.g. "은" or "는") that follows ``word``."""
    after_consonant, after_vowel = _PARTICLES[name]
    final = _final(word)
    if name in ("으로", "로"):
        # ㄹ-final words take 로 ("서울로"), like vowel-final ones.
        return after_consonant if final is True else after_vowel
    return after_consonant if final else after_vowel


def attach(word: str, name: str) -> str:
    """``word`` followed by the right form of particle ``name``."""
    return word + particle(word, name)


def dump_json(obj: Any) -> str:
    """The project's sample JSON style: UTF-8 text kept readable, one-space indent, final newline."""
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


class SpanText:
    """Builds a string piece by piece and remembers where named pieces start."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.spans: dict[str, tuple[int, str]] = {}

    def add(self, text: str, name: str | None = None) -> SpanText:
        """Append ``text``; when ``name`` is given, record ``(start, text)`` under it."""
        if name is not None:
            self.spans[name] = (self._length, text)
        self._parts.append(text)
        self._length += len(text)
        return self

    @property
    def text(self) -> str:
        """Everything added so far."""
        return "".join(self._parts)


def pick(rng: random.Random, items: list[Any] | tuple[Any, ...], k: int) -> list[Any]:
    """``k`` distinct items in random order (a shuffled prefix, so it is stable for a given RNG state)."""
    pool = list(items)
    rng.shuffle(pool)
    if k > len(pool):
        raise ValueError(f"asked for {k} distinct items from {len(pool)}")
    return pool[:k]
