"""The ``klue-mtl`` command line (also ``python -m mtl``).

Each sub-command imports what it needs when it runs, so ``klue-mtl score`` never imports torch.
Bad input of any kind surfaces as :class:`~mtl.errors.KlueInputError` and ends here with one
paragraph on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from mtl.errors import KlueInputError

EXIT_INPUT_ERROR = 2


def _cmd_score(args: argparse.Namespace) -> int:
    from mtl.scoring import score

    print(json.dumps(score(args.task, args.gold, args.pred), ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="klue-mtl",
        description="Train one KLUE-RoBERTa encoder on all eight KLUE tasks and score it with the official metrics.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("score", help="official KLUE metrics of a predictions file against a gold file (JSON)")
    p.add_argument("--task", required=True, help="ynat, nli, sts, ner, re, dp, mrc or wos")
    p.add_argument("--gold", required=True, help="gold file (official release format or hub-schema export)")
    p.add_argument("--pred", required=True, help="predictions, JSON Lines (see README)")
    p.set_defaults(func=_cmd_score)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KlueInputError as err:
        print(f"klue-mtl {args.command}: error: {err}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print(f"klue-mtl {args.command}: interrupted", file=sys.stderr)
        return 130
