"""Style encoder: a 50-frame motion clip → one style vector; and style-clip files.

A transformer over the normalised clip, mean-pooled over time. Attribute names
follow the official checkpoint (``style_encoder.*``).

One ARTalk detail kept on purpose: its positional encoding adds the sinusoid of
position T (the clip length) to *every* frame instead of position t to frame t.
The official weights were trained that way, so we do the same; the encoder is
then order-aware only through its content.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from splattalk.errors import SplattalkError
from splattalk.talk.config import TalkConfig

PE_LENGTH = 600
"""Rows of the sinusoid table (ARTalk's buffer size)."""


def sinusoids(length: int, dim: int) -> torch.Tensor:
    """Classic transformer sinusoid table ``[1, length, dim]`` (sin on even, cos on odd channels)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table[None]


class _ClipPosition(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("pe", sinusoids(PE_LENGTH, dim))
        self.dropout = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[:, x.shape[1]])


class StyleEncoder(nn.Module):
    """``clip: [B, T, D]`` motion → ``[B, style_dim]``."""

    def __init__(self, cfg: TalkConfig):
        super().__init__()
        dim = cfg.style_dim
        self.register_buffer("motion_mean", torch.zeros(cfg.motion_dim))
        self.register_buffer("motion_std", torch.ones(cfg.motion_dim))
        self.PE = _ClipPosition(dim)
        layer = nn.TransformerEncoderLayer(dim, cfg.style_heads, 4 * dim, activation="gelu", batch_first=True)
        self.encoder = nn.ModuleDict(
            {
                "motion_proj": nn.Linear(cfg.motion_dim, dim),
                "transformer": nn.TransformerEncoder(layer, cfg.style_layers, enable_nested_tensor=False),
            }
        )

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        x = self.encoder["motion_proj"]((clip - self.motion_mean) / self.motion_std)
        return self.encoder["transformer"](self.PE(x)).mean(dim=1)


def load_style_clip(path: str | Path, motion_dim: int, frames: int = 50) -> np.ndarray:
    """Read a style clip ``[frames, motion_dim]`` float32.

    Accepts our ``.npz`` (array ``motion``) or an official ARTalk style ``.pt``
    (one tensor ``[50, 106]``, read with ``torch.load(weights_only=True)``).
    """
    path = Path(path)
    if not path.is_file():
        raise SplattalkError(
            f"style clip {path} not found; pass an .npz with 'motion' [{frames}, {motion_dim}] or an ARTalk style .pt"
        )
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "motion" not in data:
                    raise SplattalkError(f"style clip {path} has no array 'motion' (found {sorted(data.files)})")
                clip = np.asarray(data["motion"], dtype=np.float32)
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(obj, torch.Tensor):
                raise SplattalkError(
                    f"style clip {path} holds a {type(obj).__name__}, expected one tensor [{frames}, {motion_dim}]"
                )
            clip = obj.detach().float().numpy()
    except SplattalkError:
        raise
    except Exception as err:  # noqa: BLE001 - any decoding failure is a bad file
        raise SplattalkError(
            f"could not read style clip {path}: {err}. Expected an .npz with 'motion' or an ARTalk style .pt"
        ) from None
    if clip.shape != (frames, motion_dim):
        raise SplattalkError(
            f"style clip {path} has shape {tuple(clip.shape)}, this model needs [{frames}, {motion_dim}] "
            "(a clip from a model with another head/expression space?)"
        )
    if not np.isfinite(clip).all():
        raise SplattalkError(f"style clip {path} contains NaN or infinite values")
    return clip
