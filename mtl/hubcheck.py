"""Fail fast when a Hugging Face hub model id cannot be reached.

Without a network, ``from_pretrained("klue/roberta-base")`` retries for about 70 s before it gives
up. A run that needs the hub and has neither a network nor a cached copy stops here at once (exit 2)
with what to do instead.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from mtl.errors import KlueInputError

CONNECT_TIMEOUT_S = 3.0


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hub_offline_by_env() -> bool:
    """True when the user switched the hub off (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return _truthy("HF_HUB_OFFLINE") or _truthy("TRANSFORMERS_OFFLINE")


def hub_reachable(timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub endpoint (``HF_ENDPOINT``) opens within ``timeout`` s."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def is_cached(repo_id: str) -> bool:
    """Whether the HF cache already holds ``repo_id``'s config.json (so offline loading can work)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # a malformed id: from_pretrained reports it properly
        return False
    return isinstance(found, str)


def check_model_source(name: str, what: str = "encoder.name") -> None:
    """Raise an input error now if ``name`` is a hub id that can be neither downloaded nor read from cache.

    Local folders pass unchecked. With a cached copy and no network the run goes on, offline.
    """
    if Path(name).expanduser().exists() or name.count("/") > 1:
        return
    offline = hub_offline_by_env()
    if not offline and hub_reachable():
        return
    if is_cached(name):
        if not offline:
            print(f"note: the Hugging Face hub is unreachable; using the cached copy of {name}", flush=True)
            os.environ["HF_HUB_OFFLINE"] = "1"
        return
    why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub is unreachable (no network)"
    raise KlueInputError(
        None,
        what,
        f"{name!r} is a hub model id, {why} and it is not in the local Hugging Face cache. Point "
        f"{what} (and encoder.tokenizer) at a local folder written by save_pretrained, or run once "
        "with network access to fill the cache",
        kind="key",
    )


def go_offline_if_unreachable() -> None:
    """Before a hub dataset load: without a network, switch the hub libraries to their cache at once.

    Otherwise ``datasets.load_dataset`` retries for about a minute before it falls back or fails.
    """
    if hub_offline_by_env() or _truthy("HF_DATASETS_OFFLINE") or hub_reachable():
        return
    print(
        "note: the Hugging Face hub is unreachable; reading hub datasets from the local cache only",
        flush=True,
    )
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    import datasets.config
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
