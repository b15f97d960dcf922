"""Mouth read-out: a small MLP from a few frames of phone posteriors to the mouth, blended with the generator's.

For models conditioned on phone posteriors (``TalkConfig.audio_posteriors``). Each frame's mouth and jaw
columns (``readout_channels``) are read from the posteriors and relative energy of the frames up to
``readout_context`` on either side, within the frame's own window (the edge frame repeats past the
window's ends, so a window needs no audio beyond its own and streaming latency is unchanged), by one
hidden layer of ``readout_hidden`` units. It is trained after stage 2 on the training corpus (MSE of the
normalised mouth columns; it reads only the frozen front-end, so it does not depend on the generator's
weights), and the window's decoded mouth becomes ``(1 − w)·generator + w·read-out`` (``readout_weight``)
before it is re-encoded as the next window's prefix. The generator's decoding is one chain of coarse
choices, conditioned on the audio through AdaLN; the read-out regresses the mean mouth those frames
support. Measured in docs/talk.md; trained by :mod:`splattalk.talk.training.readout`.
"""

from __future__ import annotations

import torch
from torch import nn

from splattalk.talk.config import TalkConfig


def context_stack(feat: torch.Tensor, context: int) -> torch.Tensor:
    """``[B, W, F]`` → ``[B, W, (2·context + 1)·F]``: each frame with ``context`` frames on either side, oldest first
    (the first/last frame repeated past the window's ends)."""
    W = feat.shape[1]
    padded = torch.cat([feat[:, :1].expand(-1, context, -1), feat, feat[:, -1:].expand(-1, context, -1)], dim=1)
    return torch.cat([padded[:, k : k + W] for k in range(2 * context + 1)], dim=-1)


class MouthReadout(nn.Module):
    """A small MLP: ``(2·context + 1)·F`` stacked posterior features → the ``readout_channels`` (motion units)."""

    def __init__(self, cfg: TalkConfig, in_dim: int):
        super().__init__()
        if not cfg.audio_posteriors:
            raise ValueError("the mouth read-out reads phone posteriors: it needs audio_posteriors")
        if cfg.readout_context < 0 or cfg.readout_hidden < 1:
            raise ValueError(
                f"readout_context must be ≥ 0 and readout_hidden ≥ 1, got {cfg.readout_context}, {cfg.readout_hidden}"
            )
        self.context = cfg.readout_context
        self.channels = list(cfg.readout_channels)
        self.net = nn.Sequential(
            nn.Dropout(INPUT_DROPOUT),
            nn.Linear((2 * cfg.readout_context + 1) * in_dim, cfg.readout_hidden),
            nn.GELU(),
            nn.Dropout(HIDDEN_DROPOUT),
            nn.Linear(cfg.readout_hidden, len(cfg.readout_channels)),
        )

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """``feat: [B, W, F]`` (the audio encoder's output for one window) → ``[B, W, channels]``."""
        return self.net(context_stack(feat, self.context))


INPUT_DROPOUT, HIDDEN_DROPOUT = 0.1, 0.2
"""Dropout of the read-out while it trains."""
