"""klue-mtl: one KLUE-RoBERTa encoder, eight task heads, official KLUE metrics."""

__version__ = "0.1.0"
