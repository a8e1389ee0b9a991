"""Rows with the Hugging Face hub ``klue`` schema, from the hub itself or from a local export.

Accepted sources:

* ``hub:<repo>/<config>/<split>``, e.g. ``hub:klue/klue/ynat/validation``:
  ``datasets.load_dataset(repo, config, split=split)`` (needs a network or a warm HF cache);
* a folder written by ``Dataset.save_to_disk``: ``datasets.load_from_disk``;
* an ``.arrow`` file (a ``save_to_disk`` shard): ``datasets.Dataset.from_file``;
* a ``.parquet`` file: read with ``pyarrow.parquet`` directly. ``Dataset.from_parquet`` would first
  copy the file into the HF cache folder (a write outside the project, keyed by a fingerprint), for
  rows that are the same either way;
* ``.jsonl`` / ``.ndjson`` / ``.json`` JSON Lines (what ``Dataset.to_json`` writes): parsed with
  :func:`mtl.data.io.iter_jsonl`, which names the line of a syntax error and does not infer a column
  schema that could silently cast or null a malformed row (``Dataset.from_json`` would).

``datasets`` and ``pyarrow`` are imported inside the functions: reading an official release file never
pays for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mtl.data.io import iter_jsonl
from mtl.errors import KlueInputError

HUB_SPEC_PREFIX = "hub:"


def parse_hub_spec(spec: str) -> tuple[str, str, str]:
    """Split ``hub:<repo>/<config>/<split>`` into ``(repo, config, split)``."""
    body = spec.removeprefix(HUB_SPEC_PREFIX)
    parts = body.split("/")
    if len(parts) < 3 or not all(parts):
        raise KlueInputError(
            spec,
            None,
            "hub spec must look like hub:<repo>/<config>/<split>, e.g. hub:klue/klue/ynat/validation",
        )
    return "/".join(parts[:-2]), parts[-2], parts[-1]


def load_hub_rows(path_or_spec: str) -> tuple[Iterable[dict[str, Any]], str]:
    """Load hub-schema rows; return them and a source name for error messages."""
    if path_or_spec.startswith(HUB_SPEC_PREFIX):
        return _load_from_hub(path_or_spec), path_or_spec
    path = Path(path_or_spec)
    if not path.exists():
        raise KlueInputError(path, None, "file not found")
    if path.is_dir():
        return _load_from_disk(path), str(path)
    if path.suffix == ".parquet":
        return _load_parquet(path), str(path)
    if path.suffix == ".arrow":
        return _load_arrow(path), str(path)
    if path.suffix in (".jsonl", ".ndjson", ".json"):
        return [row for _, row in iter_jsonl(path)], str(path)
    raise KlueInputError(path, None, "not a hub export: expected a folder, .parquet, .arrow, .jsonl or .json")


def _load_from_hub(spec: str) -> list[dict[str, Any]]:
    repo, config, split = parse_hub_spec(spec)
    import datasets

    from mtl.hubcheck import go_offline_if_unreachable

    go_offline_if_unreachable()
    try:
        ds = datasets.load_dataset(repo, config, split=split)
    except Exception as e:  # network, auth, unknown config/split: all mean "cannot read this input"
        raise KlueInputError(
            spec,
            None,
            f"could not load {repo!r} config {config!r} split {split!r} from the Hugging Face hub "
            f"({type(e).__name__}: {e}). Without a network, export the split to parquet/arrow/jsonl "
            "elsewhere and pass that file instead",
        ) from None
    return ds.to_list()


def _load_from_disk(path: Path) -> list[dict[str, Any]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # not a save_to_disk folder, or a damaged one
        raise KlueInputError(path, None, f"not a dataset folder written by save_to_disk ({e})") from None
    if isinstance(ds, datasets.DatasetDict):
        splits = ", ".join(sorted(ds))
        raise KlueInputError(
            path,
            None,
            f"folder holds a DatasetDict with splits ({splits}); pass the folder of one split, e.g. {path / next(iter(ds))}",
        )
    return ds.to_list()


def _load_arrow(path: Path) -> list[dict[str, Any]]:
    import datasets

    try:
        return datasets.Dataset.from_file(str(path)).to_list()
    except Exception as e:  # not an Arrow stream file
        raise KlueInputError(path, None, f"not a readable Arrow file ({type(e).__name__}: {e})") from None


def _load_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # truncated or not parquet at all
        raise KlueInputError(path, None, f"not a readable parquet file ({type(e).__name__}: {e})") from None
