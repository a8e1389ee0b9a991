"""A deterministic, leak-free 80/20 train/held-out split of the real KLUE dev files.

No KLUE train split is available offline, so the project learns from 80% of each dev file and
reports on the other 20%. KLUE reuses text across examples (an NLI premise has several hypotheses,
an MRC document several questions, WoS dialogues share utterances), so items are first **grouped**:
two raw items that carry the same text (``Task.split_texts``: premise, hypothesis, sentence, title,
context, question, utterance...) are in one group, transitively (union-find). A whole group goes to
the held-out side when the SHA-256 of its key (the smallest item key in it: the guid, a document's
title and contexts, a TSV sentence's guid), read as a number, falls in the last 20% of the range:
stable across machines, Python versions and file order. A group of one item keeps the bucket of
its own key.

A text found in at least ``Task.formulaic_min_items`` items (WoS's "감사합니다.") is formulaic:
it links nothing, or it would chain most dialogues into one group. Such texts are the only ones
allowed on both sides; :func:`shared_texts` reports them.

The files are written in the official release format by filtering the original JSON objects / TSV
blocks, so the readers see exactly what the release holds. Nothing is copied into the repository:
the command reads the files at run time. Which tasks are split, and from which file, is each task
class's ``official_dev_file``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl.data.io import read_json, read_text
from mtl.errors import KlueInputError

HELDOUT_PERCENT = 20


def is_heldout(key: str) -> bool:
    """True for the ~20% of keys whose SHA-256 lands in the held-out bucket."""
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return digest % 100 < HELDOUT_PERCENT


@dataclass
class Grouping:
    """How one file's items were grouped: group id per item and what linked them."""

    groups: list[int]
    #: texts that linked two or more items (each counted once)
    linking_texts: int = 0
    #: formulaic texts (in >= ``formulaic_min_items`` items) that were not allowed to link
    formulaic: list[str] = field(default_factory=list)

    @property
    def sizes(self) -> Counter[int]:
        return Counter(self.groups)


def group_items(texts: Sequence[Sequence[str]], formulaic_min_items: int | None = None) -> Grouping:
    """Union-find over items that share a text; ``texts[i]`` are the texts of item ``i``."""
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    spread = Counter(t for item in texts for t in set(item))
    formulaic = sorted(
        t for t, n in spread.items() if formulaic_min_items is not None and n >= formulaic_min_items
    )
    skip = set(formulaic)
    first: dict[str, int] = {}
    for i, item in enumerate(texts):
        for t in item:
            if t in skip:
                continue
            if t in first:
                parent[find(i)] = find(first[t])
            else:
                first[t] = i
    linking = sum(1 for t, n in spread.items() if n > 1 and t not in skip)
    return Grouping([find(i) for i in range(len(texts))], linking, formulaic)


def route(keys: Sequence[str], grouping: Grouping) -> list[bool]:
    """Held-out flag per item: every item of a group follows the bucket of the group's smallest key."""
    group_key: dict[int, str] = {}
    for key, g in zip(keys, grouping.groups, strict=True):
        if g not in group_key or key < group_key[g]:
            group_key[g] = key
    return [is_heldout(group_key[g]) for g in grouping.groups]


def _is_sentence_header(line: str) -> bool:
    # "## <guid>\t<sentence>"; the release's column-name comment also has a tab, but spaces before it.
    return line.startswith("## ") and "\t" in line and " " not in line[3:].split("\t", 1)[0]


@dataclass
class ReleaseFile:
    """A release file cut into items (JSON objects, SQuAD documents or TSV sentence blocks)."""

    source: Path
    items: list[Any]
    keys: list[str]
    #: rebuilds the file's content (same format) from a subset of its items
    header: Any = None

    def content(self, items: list[Any]) -> Any:
        if self.source.suffix == ".tsv":
            return self.header + "\n" + "\n\n".join(items) + "\n\n"
        if isinstance(self.header, dict):
            return {**self.header, "data": items}
        return items


def load_release_file(source: Path) -> ReleaseFile:
    """Cut a release file into the items the split routes: format-driven, no task names."""
    if source.suffix == ".tsv":
        blocks = read_text(source).strip("\n").split("\n\n")
        lines = blocks[0].split("\n")
        first = next((i for i, line in enumerate(lines) if _is_sentence_header(line)), None)
        if first is None:
            raise KlueInputError(source, 1, "no '## <guid>\\t<sentence>' header: not a KLUE TSV release file")
        header = "\n".join(lines[:first])
        blocks[0] = "\n".join(lines[first:])
        keys = [block.split("\n", 1)[0][3:].split("\t", 1)[0] for block in blocks]
        return ReleaseFile(source, blocks, keys, header)
    data = read_json(source)
    if isinstance(data, dict) and isinstance(data.get("data"), list):  # SQuAD layout: split by document
        docs = data["data"]
        keys = [d.get("title", "") + "\n" + "\n".join(p["context"] for p in d["paragraphs"]) for d in docs]
        return ReleaseFile(source, docs, keys, {k: v for k, v in data.items() if k != "data"})
    if not isinstance(data, list):
        raise KlueInputError(source, None, "expected a JSON list of records or a SQuAD-style {'data': [...]}")
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "guid" not in item:
            raise KlueInputError(source, i, "a record without 'guid'")
    return ReleaseFile(source, data, [item["guid"] for item in data])


def split_task(task: Any, source: Path) -> tuple[Any, Any, Grouping]:
    """(train part, held-out part, grouping) of one official dev file, in its own format."""
    release = load_release_file(source)
    try:
        texts = [task.split_texts(item) for item in release.items]
    except (KeyError, IndexError, TypeError) as exc:
        raise KlueInputError(
            source, None, f"an item lacks a text field the {task.name} split groups by: {exc!r}"
        ) from None
    grouping = group_items(texts, task.formulaic_min_items)
    held = route(release.keys, grouping)
    train = [item for item, h in zip(release.items, held, strict=True) if not h]
    heldout = [item for item, h in zip(release.items, held, strict=True) if h]
    return release.content(train), release.content(heldout), grouping


def split_official(data_dir: str | Path, output: str | Path) -> dict[str, dict[str, Any]]:
    """Write ``<task>_train.<ext>`` and ``<task>_heldout.<ext>`` for every task with an official dev file.

    Returns per task: unit counts of both sides, the number of groups, the largest group, how many
    texts linked items, and the formulaic texts left out of the grouping.
    """
    from mtl.tasks import TASKS

    data_dir, output = Path(data_dir), Path(output)
    if (data_dir / "official").is_dir():
        data_dir = data_dir / "official"
    output.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, Any]] = {}
    for name, cls in TASKS.items():
        if cls.official_dev_file is None:
            continue
        source = data_dir / cls.official_dev_file
        train, heldout, grouping = split_task(cls(), source)
        ext = source.suffix
        for part, content in (("train", train), ("heldout", heldout)):
            target = output / f"{name}_{part}{ext}"
            if isinstance(content, str):
                target.write_text(content, encoding="utf-8")
            else:
                target.write_text(json.dumps(content, ensure_ascii=False, indent=1), encoding="utf-8")
        sizes = grouping.sizes
        counts[name] = {
            "train": _count(train),
            "heldout": _count(heldout),
            "items": len(grouping.groups),
            "groups": len(sizes),
            "largest_group": max(sizes.values(), default=0),
            "linking_texts": grouping.linking_texts,
            "formulaic_texts": len(grouping.formulaic),
        }
    ontology = data_dir / "ontology.json"
    if ontology.is_file():
        (output / "ontology.json").write_bytes(ontology.read_bytes())
    return counts


def _count(content: Any) -> int:
    if isinstance(content, str):
        return sum(_is_sentence_header(line) for line in content.split("\n"))
    if isinstance(content, dict):
        return sum(len(p["qas"]) for d in content["data"] for p in d["paragraphs"])
    return len(content)
