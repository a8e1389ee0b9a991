"""The ``klue-mtl`` command line: the parser, and one function per command in :mod:`mtl.cli.commands`."""
