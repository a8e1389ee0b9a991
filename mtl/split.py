"""A deterministic 80/20 train/held-out split of the real KLUE dev files (issue: evidence of learning).

No KLUE train split is available offline, so the project learns from 80% of each dev file and
reports on the other 20%. A unit goes to the held-out part when the SHA-256 of its key, read as a
number, falls in the last 20% of the range: stable across machines, Python versions and file order.
The key is the guid, except where examples share text: WoS splits by dialogue (a record is a
dialogue) and MRC by document (title + context), so no context appears on both sides. The files are
written in the official release format by filtering the original JSON objects / TSV blocks, so the
readers see exactly what the release holds. Nothing is copied into the repository: the command
reads the files at run time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mtl.errors import KlueInputError
from mtl.io import read_json, read_text

HELDOUT_PERCENT = 20

# task -> (official dev file name, output stem)
OFFICIAL_FILES: dict[str, str] = {
    "ynat": "ynat-v1.1_dev.json",
    "nli": "klue-nli-v1.1_dev.json",
    "sts": "klue-sts-v1.1_dev.json",
    "ner": "klue-ner-v1.1_dev.tsv",
    "re": "klue-re-v1.1_dev.json",
    "dp": "klue-dp-v1.1_dev.tsv",
    "mrc": "klue-mrc-v1_dev.subset.json",
    "wos": "wos-v1_dev.subset.json",
}


def is_heldout(key: str) -> bool:
    """True for the ~20% of keys whose SHA-256 lands in the held-out bucket."""
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return digest % 100 < HELDOUT_PERCENT


def _split_json_list(items: list[dict[str, Any]]) -> tuple[list, list]:
    train, heldout = [], []
    for item in items:
        (heldout if is_heldout(item["guid"]) else train).append(item)
    return train, heldout


def _split_mrc(data: dict[str, Any]) -> tuple[dict, dict]:
    train, heldout = [], []
    for document in data["data"]:
        key = document.get("title", "") + "\n" + "\n".join(p["context"] for p in document["paragraphs"])
        (heldout if is_heldout(key) else train).append(document)
    return {**data, "data": train}, {**data, "data": heldout}


def _is_sentence_header(line: str) -> bool:
    # "## <guid>\t<sentence>"; the release's column-name comment also has a tab, but spaces before it.
    return line.startswith("## ") and "\t" in line and " " not in line[3:].split("\t", 1)[0]


def _split_tsv(text: str) -> tuple[str, str]:
    """Keep the header comment lines on both sides; route each sentence block by its guid."""
    blocks = text.strip("\n").split("\n\n")
    lines = blocks[0].split("\n")
    first_sentence = next(i for i, line in enumerate(lines) if _is_sentence_header(line))
    header = "\n".join(lines[:first_sentence])
    blocks[0] = "\n".join(lines[first_sentence:])
    train, heldout = [], []
    for block in blocks:
        guid = block.split("\n", 1)[0][3:].split("\t", 1)[0]
        (heldout if is_heldout(guid) else train).append(block)
    return (header + "\n" + "\n\n".join(train) + "\n\n", header + "\n" + "\n\n".join(heldout) + "\n\n")


def split_task(task: str, source: Path) -> tuple[Any, Any]:
    """(train part, held-out part) of one official dev file, in its own format."""
    if source.suffix == ".tsv":
        return _split_tsv(read_text(source))
    data = read_json(source)
    if task == "mrc":
        return _split_mrc(data)
    if not isinstance(data, list):
        raise KlueInputError(source, None, "expected a JSON list of records")
    return _split_json_list(data)


def split_official(data_dir: str | Path, output: str | Path) -> dict[str, dict[str, int]]:
    """Write ``<task>_train.<ext>`` and ``<task>_heldout.<ext>`` for every task; returns unit counts."""
    data_dir, output = Path(data_dir), Path(output)
    if (data_dir / "official").is_dir():
        data_dir = data_dir / "official"
    output.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for task, name in OFFICIAL_FILES.items():
        source = data_dir / name
        train, heldout = split_task(task, source)
        ext = source.suffix
        for part, content in (("train", train), ("heldout", heldout)):
            target = output / f"{task}_{part}{ext}"
            if isinstance(content, str):
                target.write_text(content, encoding="utf-8")
            else:
                target.write_text(json.dumps(content, ensure_ascii=False, indent=1), encoding="utf-8")
        counts[task] = {"train": _count(train), "heldout": _count(heldout)}
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
