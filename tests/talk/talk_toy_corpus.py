"""A toy talk corpus in the real on-disk format: a few synthetic utterances whose jaw follows the audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from splattalk.talk.corpus.layout import JAW, MOTION_DIM, ROTATION, Utterance, clip_paths, rebuild_manifest, write_clip


def toy_utterance(seconds: float, seed: int, style: int) -> tuple[np.ndarray, np.ndarray]:
    """(audio [S] 16 kHz, motion [T, 32] 25 fps): syllable bursts; jaw opens with the burst envelope."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * 16000))
    t = np.arange(n) / 16000
    rate = rng.uniform(2.5, 4.0)
    env = np.clip(np.sin(2 * np.pi * rate * t + rng.uniform(0, 6)), 0, None) ** 2
    env[t > seconds - 0.4] = 0.0  # trailing silence
    audio = (np.sin(2 * np.pi * rng.uniform(120, 220) * t) * 0.3 + rng.standard_normal(n) * 0.05) * env
    T = int(round(seconds * 25))
    ft = (np.arange(T) + 0.5) / 25
    motion = np.zeros((T, MOTION_DIM), np.float32)
    frame_env = np.interp(ft, t, env)
    motion[:, JAW.start] = 0.25 * frame_env
    motion[:, 0] = 0.6 * frame_env  # mouth_open
    motion[:, ROTATION.start] = 0.05 * (style + 1) * np.sin(2 * np.pi * 0.3 * ft + seed)
    motion[:, 4] = 0.3 * style  # smile: the style's resting expression
    return audio.astype(np.float32), motion


def toy_phones(voiced: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Phone timings of a toy utterance: "AA" while the jaw is open, "sil" otherwise (25 fps frames)."""
    edges = np.flatnonzero(np.diff(voiced.astype(np.int8))) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(voiced)]])
    return ["AA" if voiced[s] else "sil" for s in starts], starts / 25.0, ends / 25.0


def make_toy_corpus(root: Path, n_train: int = 6, n_heldout: int = 2, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n_train + n_heldout):
        split = "train" if i < n_train else "heldout"
        seconds = float(rng.uniform(3.0, 9.0))
        style = i % 2
        audio, motion = toy_utterance(seconds, seed * 100 + i, style)
        cid = f"toy-{i:03d}"
        wav, npz = clip_paths(cid)
        rec = Utterance(cid, wav, npz, seconds, f"toy:{i % 3}", style, split, "", "espeak-ng")
        write_clip(root, rec, audio, motion, *toy_phones(motion[:, JAW.start] > 0.05))
    rebuild_manifest(root)
    return root
