"""``python -m mtl`` is the same as the ``klue-mtl`` command."""

from mtl.cli.main import main

raise SystemExit(main())
