"""Shared bits of the talk tests: tiny configs and seeded random models."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from splattalk.camera import intrinsics
from splattalk.run import Tracks
from splattalk.talk.config import TINY, TalkConfig
from splattalk.talk.generator import TalkModel

TINY_W2V = dataclasses.replace(
    TINY,
    name="tiny-wav2vec2",
    head_model="flame2020",
    motion_dim=106,
    audio_encoder="wav2vec2",
    audio_dim=32,
    wav2vec2_dim=32,
    wav2vec2_layers=1,
    wav2vec2_conv_dim=16,
    audio_context_frames=0,
)
"""The official model's structure (wav2vec2 encoder, weight-normed conv, 106-D motion) at test size."""


def random_model(cfg: TalkConfig = TINY, seed: int = 0) -> TalkModel:
    """A seeded random model with non-trivial motion statistics, in eval mode."""
    torch.manual_seed(seed)
    model = TalkModel(cfg).eval()
    with torch.no_grad():
        for mod in (model.basic_vae, model.style_encoder):
            mod.motion_mean.normal_(0.0, 0.2)
            mod.motion_std.uniform_(0.3, 1.0)
    return model


def speechlike(seconds: float, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """Noise bursts with an amplitude envelope (syllable-ish), float32 16 kHz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, 6)), 0, None) ** 2
    return (rng.standard_normal(n) * 0.2 * envelope).astype(np.float32)


import pytest  # noqa: E402


@pytest.fixture
def one_thread():
    """These models are too small to gain from a second thread, and on a shared 2-core machine
    OpenMP's spin-waiting makes 2 threads several times slower; restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def save_tracked_run(folder, expr, jaw, rot=None, head_model="default-head-v1", fps=25.0, **extra):
    """Write ``folder/tracking/tracks.npz`` for a synthetic run: the given expression ``[T, E]``, jaw ``[T, 3]`` and
    head rotation (zeros if None); neck, translation and eyes still; a 256² camera. ``extra`` goes to ``Tracks``
    (``valid``, ``static_offset``, …). Returns ``folder``."""
    T = expr.shape[0]
    zeros = np.zeros((T, 3), np.float32)
    (folder / "tracking").mkdir(parents=True, exist_ok=True)
    Tracks(
        expr=expr,
        jaw=jaw,
        neck=zeros,
        rot=zeros if rot is None else rot,
        transl=zeros,
        eyes=np.zeros((T, 6), np.float32),
        shape=np.zeros(16, np.float32),
        K=intrinsics(500.0, 256, 256),
        viewmat=np.eye(4),
        width=256,
        height=256,
        head_model=head_model,
        fps=fps,
        **extra,
    ).save(folder / "tracking" / "tracks.npz")
    return folder
