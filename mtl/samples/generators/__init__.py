"""One module per KLUE task, each turning a seeded RNG into that task's sample file text.

Every module exposes ``render(split: str) -> str``: the complete file content in the official KLUE
release format. :mod:`mtl.samples.make_samples` writes them to disk.
"""
