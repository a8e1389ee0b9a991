"""``python -m mtl`` is the same as the ``klue-mtl`` command."""

from mtl.cli import main

raise SystemExit(main())
