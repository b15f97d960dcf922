"""Resumable fitting state: one file, written atomically every N iterations.

It holds everything the next iteration depends on — Gaussian parameters and
their Adam moments, densification statistics, per-frame tracking corrections,
the random generator, the iteration, the evaluation history and the elapsed
time — so a fit killed at any moment and rerun continues exactly where the last
checkpoint left it and ends with the same avatar as an uninterrupted run (the
CPU rasterizer is deterministic).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from splattalk.atomic import atomic_path

FORMAT_VERSION = 1


def fit_key(config: dict, tracks_fingerprint: str) -> str:
    """What a checkpoint must match to be resumed: the settings that change the result, and the tracks."""
    text = json.dumps([FORMAT_VERSION, config, tracks_fingerprint], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def save_checkpoint(path: str | Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, key: str) -> dict | None:
    """The checkpoint at ``path`` if it exists, reads and was made with ``key``; else None (start over)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - truncated or foreign file: start over rather than fail
        return None
    if not isinstance(state, dict) or state.get("key") != key:
        return None
    return state
