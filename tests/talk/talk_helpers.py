"""Shared bits of the talk tests: tiny configs and seeded random models."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

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
