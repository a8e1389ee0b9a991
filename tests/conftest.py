"""Shared test settings."""

import os

import pytest
import torch

# Tiny models on a 2-core machine run several times faster on one intra-op thread.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
