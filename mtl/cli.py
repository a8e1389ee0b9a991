"""Command line (placeholder, filled in by the score command)."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("klue-mtl", argv or sys.argv[1:])
    return 0
