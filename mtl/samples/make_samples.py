"""Write the bundled sample files: ``python -m mtl.samples.make_samples [--out DIR] [--check]``.

Every sentence is invented by the generators in :mod:`mtl.samples.generators` (templates, word lists
and seeded RNGs); nothing is copied from KLUE. The output is deterministic, so the committed files
must equal a fresh build byte for byte (``--check`` verifies that, and so does the test suite).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from mtl.data.labels import RE_LABELS
from mtl.samples import ONTOLOGY_PATH, RELATION_LIST_PATH, SAMPLE_SPLITS, SAMPLES_DIR
from mtl.samples.generators import wos
from mtl.samples.generators.common import dump_json
from mtl.tasks import TASKS


def build_files() -> dict[str, str]:
    """File name -> file text for every sample file (16 task files, the ontology, the relation list).

    Each task that bundles samples names its file pattern and its generator module (whose
    ``render(split)`` writes the file) on its class.
    """
    files = {
        cls.sample_file.format(split=split): importlib.import_module(cls.sample_generator).render(split)
        for cls in TASKS.values()
        if cls.sample_file and cls.sample_generator
        for split in SAMPLE_SPLITS
    }
    files[ONTOLOGY_PATH.name] = wos.render_ontology()
    files[RELATION_LIST_PATH.name] = dump_json({"relations": list(RE_LABELS)})
    return files


def write_samples(out_dir: str | Path = SAMPLES_DIR) -> list[Path]:
    """Write every sample file into ``out_dir`` (UTF-8, ``\\n`` line ends); return the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in build_files().items():
        path = out / name
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


def stale_files(directory: str | Path = SAMPLES_DIR) -> list[str]:
    """Names of sample files in ``directory`` that are missing or differ from a fresh build."""
    folder = Path(directory)
    return [
        name
        for name, text in build_files().items()
        if not (folder / name).is_file() or (folder / name).read_bytes() != text.encode("utf-8")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(SAMPLES_DIR), help="folder to write to (default: the package)")
    parser.add_argument(
        "--check", action="store_true", help="only report files that differ from a fresh build"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_samples(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
