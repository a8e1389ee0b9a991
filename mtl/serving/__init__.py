"""Using a trained joint model: the Python API and the per-task transformers exports."""
