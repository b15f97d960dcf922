"""Mouth read-out: a linear map from a few frames of phone posteriors to the mouth, blended with the generator's.

For models conditioned on phone posteriors (``TalkConfig.audio_posteriors``). Each frame's mouth and jaw
columns (``readout_channels``) are read from the posteriors and relative energy of the frames up to
``readout_context`` on either side, within the frame's own window (the edge frame repeats past the
window's ends, so a window needs no audio beyond its own and streaming latency is unchanged). The map is
fitted in closed form (ridge regression) on the training corpus, after stage 2, and the window's decoded
mouth becomes ``(1 − w)·generator + w·read-out`` (``readout_weight``) before it is re-encoded as the next
window's prefix. The generator's bits see the audio only through AdaLN and its decoding is a sample;
a regression of the same posteriors is the conditional mean those few frames support, and the two err
differently (measured in docs/talk.md).

    python -m splattalk.talk.readout --model runs/ar/talk.safetensors --out runs/ar/talk_readout.safetensors \\
        --corpus ~/.cache/splattalk/corpus --context 12 --weight 0.5
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from splattalk.errors import SplattalkError
from splattalk.talk.config import TalkConfig


def context_stack(feat: torch.Tensor, context: int) -> torch.Tensor:
    """``[B, W, F]`` → ``[B, W, (2·context + 1)·F]``: each frame with ``context`` frames on either side, oldest first
    (the first/last frame repeated past the window's ends)."""
    W = feat.shape[1]
    padded = torch.cat([feat[:, :1].expand(-1, context, -1), feat, feat[:, -1:].expand(-1, context, -1)], dim=1)
    return torch.cat([padded[:, k : k + W] for k in range(2 * context + 1)], dim=-1)


class MouthReadout(nn.Module):
    """``linear``: ``(2·context + 1)·F`` stacked posterior features → the ``readout_channels`` (motion units)."""

    def __init__(self, cfg: TalkConfig, in_dim: int):
        super().__init__()
        if not cfg.audio_posteriors:
            raise ValueError("the mouth read-out reads phone posteriors: it needs audio_posteriors")
        if cfg.readout_context < 0:
            raise ValueError(f"readout_context must be ≥ 0, got {cfg.readout_context}")
        self.context = cfg.readout_context
        self.channels = list(cfg.readout_channels)
        self.linear = nn.Linear((2 * cfg.readout_context + 1) * in_dim, len(cfg.readout_channels))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """``feat: [B, W, F]`` (the audio encoder's output for one window) → ``[B, W, channels]``."""
        return self.linear(context_stack(feat, self.context))


# ---------------------------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class ReadoutConfig:
    """Fit the mouth read-out of a posterior-conditioned model on a corpus' training clips."""

    model: Path
    """Stage-2 model file (trained with ``--audio-posteriors``)."""
    out: Path
    """Where the model with its read-out goes."""
    corpus: Path | None = None
    """Corpus (None: the default corpus folder)."""
    context: int = 12
    """Frames on each side a frame's mouth is read from (within its window)."""
    weight: float = 0.5
    """Share of the read-out in the mouth (``readout_weight``); the generator gives the rest."""
    ridge: float = 1e-3
    """Ridge penalty, as a share of the mean diagonal of XᵀX."""
    threads: int = 1
    """Torch CPU threads."""


@torch.inference_mode()
def window_features(model, audio: np.ndarray, frames: int) -> torch.Tensor:
    """The audio encoder's output ``[n_windows, W, F]`` for a clip, window by window as :func:`inference.generate`
    feeds it (left context of zeros, the last window zero-padded)."""
    cfg = model.cfg
    n = -(-frames // cfg.window)
    padded = np.zeros(cfg.context_samples + n * cfg.window_samples, np.float32)
    audio = np.asarray(audio, np.float32)[: n * cfg.window_samples]
    padded[cfg.context_samples : cfg.context_samples + audio.shape[0]] = audio
    x = torch.from_numpy(padded)
    wins = [x[w * cfg.window_samples : w * cfg.window_samples + cfg.context_samples + cfg.window_samples] for w in range(n)]
    return model.audio_encoder(torch.stack(wins))


def fit_readout(model, clips, context: int, weight: float, channels: tuple[int, ...], ridge: float = 1e-3, total: int | None = None):
    """``model`` with a read-out fitted on ``clips`` (an iterable of ``(audio [S], motion [T, D])``) by ridge regression;
    returns ``(model, summary)``; ``total``: the number of clips, for a progress bar."""
    if not model.cfg.audio_posteriors:
        raise SplattalkError("the mouth read-out needs a model conditioned on phone posteriors (train_ar --audio-posteriors)")
    if context < 0 or not 0.0 <= weight <= 1.0:
        raise SplattalkError(f"read-out context must be ≥ 0 and weight in [0, 1], got {context} and {weight}")
    cfg = replace(model.cfg, readout_context=context, readout_channels=tuple(channels), readout_weight=weight)
    ch = list(channels)
    xtx = xty = None
    frames, y2 = 0, 0.0
    it = clips
    if total is not None:
        from tqdm import tqdm

        it = tqdm(clips, desc="read-out", unit="clip", total=total)
    model.eval()
    for audio, motion in it:
        T = motion.shape[0]
        feat = context_stack(window_features(model, audio, T), context)
        x = feat.reshape(-1, feat.shape[-1])[:T].double()
        x = torch.cat([x, torch.ones(T, 1, dtype=x.dtype)], dim=1)
        y = torch.from_numpy(np.asarray(motion, np.float64)[:, ch])
        xtx = x.T @ x if xtx is None else xtx + x.T @ x
        xty = x.T @ y if xty is None else xty + x.T @ y
        frames += T
        y2 += float((y**2).sum())
    if xtx is None:
        raise SplattalkError("no training clips to fit the read-out on")
    reg = ridge * float(xtx.diagonal().mean()) * torch.eye(xtx.shape[0], dtype=xtx.dtype)
    reg[-1, -1] = 0.0  # the bias is not penalised
    w = torch.linalg.solve(xtx + reg, xty)
    fitted = _with_readout(model, cfg, w)
    resid = float((w.T @ xtx @ w).trace() - 2 * (w * xty).sum() + y2) / frames
    return fitted, {"frames": frames, "context": context, "weight": weight, "train_rmse": resid**0.5}


def _with_readout(model, cfg: TalkConfig, w: torch.Tensor):
    from splattalk.talk.generator import TalkModel

    out = TalkModel(cfg)
    missing, unexpected = out.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("readout.") for k in missing):
        raise SplattalkError(f"read-out: unexpected keys {unexpected}, missing {missing}")
    out.readout.linear.weight.data.copy_(w[:-1].T.float())
    out.readout.linear.bias.data.copy_(w[-1].float())
    return out.eval()


def run(cfg: ReadoutConfig) -> Path:
    from splattalk.talk.checkpoint import load_talk_checkpoint, save_talk_checkpoint
    from splattalk.talk.corpus import MOUTH_CHANNELS, load_clip, read_manifest
    from splattalk.talk.dataset import DEFAULT_CORPUS

    torch.set_num_threads(max(1, cfg.threads))
    corpus = cfg.corpus or DEFAULT_CORPUS
    model = load_talk_checkpoint(cfg.model)
    train = read_manifest(corpus, "train")
    channels = model.cfg.expected_channels or MOUTH_CHANNELS
    clips = ((c.audio, c.motion) for c in (load_clip(corpus, u) for u in train))
    fitted, summary = fit_readout(model, clips, cfg.context, cfg.weight, tuple(channels), cfg.ridge, total=len(train))
    save_talk_checkpoint(fitted, cfg.out, {"stage": "readout", "readout": str(summary)})
    print(summary)
    return Path(cfg.out)


def main() -> None:
    import tyro

    run(tyro.cli(ReadoutConfig))


if __name__ == "__main__":
    main()
