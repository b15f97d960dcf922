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
support. Measured in docs/talk.md.

    python -m splattalk.talk.readout --model runs/ar/talk.safetensors --out runs/ar/talk_readout.safetensors \\
        --corpus ~/.cache/splattalk/corpus
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
    """A small MLP: ``(2·context + 1)·F`` stacked posterior features → the ``readout_channels`` (motion units)."""

    def __init__(self, cfg: TalkConfig, in_dim: int):
        super().__init__()
        if not cfg.audio_posteriors:
            raise ValueError("the mouth read-out reads phone posteriors: it needs audio_posteriors")
        if cfg.readout_context < 0 or cfg.readout_hidden < 1:
            raise ValueError(f"readout_context must be ≥ 0 and readout_hidden ≥ 1, got {cfg.readout_context}, {cfg.readout_hidden}")
        self.context = cfg.readout_context
        self.channels = list(cfg.readout_channels)
        self.net = nn.Sequential(
            nn.Dropout(INPUT_DROPOUT), nn.Linear((2 * cfg.readout_context + 1) * in_dim, cfg.readout_hidden), nn.GELU(),
            nn.Dropout(HIDDEN_DROPOUT), nn.Linear(cfg.readout_hidden, len(cfg.readout_channels)),
        )  # fmt: skip

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """``feat: [B, W, F]`` (the audio encoder's output for one window) → ``[B, W, channels]``."""
        return self.net(context_stack(feat, self.context))


INPUT_DROPOUT, HIDDEN_DROPOUT = 0.1, 0.2
"""Dropout of the read-out while it trains."""


# ---------------------------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class ReadoutConfig:
    """Train the mouth read-out of a posterior-conditioned model on a corpus' training clips."""

    model: Path
    """Stage-2 model file (trained with ``--audio-posteriors``)."""
    out: Path
    """Where the model with its read-out goes."""
    corpus: Path | None = None
    """Corpus (None: the default corpus folder)."""
    context: int = 12
    """Frames on each side a frame's mouth is read from (within its window)."""
    hidden: int = 256
    """Width of the read-out's hidden layer."""
    weight: float = 0.85
    """Share of the read-out in the mouth (``readout_weight``); the generator gives the rest."""
    epochs: int = 8
    """Passes over the training frames."""
    batch_size: int = 256
    """Frames per step."""
    lr: float = 1e-3
    """AdamW learning rate (weight decay 0.01)."""
    seed: int = 0
    """Seed of the initial weights, the frame order and the dropout."""
    threads: int = 1
    """Torch CPU threads."""


@torch.inference_mode()
def window_features(model, audio: np.ndarray, frames: int) -> torch.Tensor:
    """The audio encoder's output ``[n_windows, W, F]`` for a clip, window by window as :func:`inference.generate`
    feeds it (left context of zeros, the last window zero-padded)."""
    from splattalk.talk.inference import pad_for_windows

    cfg = model.cfg
    n = -(-frames // cfg.window)
    x = torch.from_numpy(pad_for_windows(audio, n, cfg))
    wins = [x[w * cfg.window_samples : w * cfg.window_samples + cfg.context_samples + cfg.window_samples] for w in range(n)]
    return model.audio_encoder(torch.stack(wins))


def fit_readout(model, clips, context: int, weight: float, channels: tuple[int, ...], hidden: int = 256, epochs: int = 8,
                batch_size: int = 256, lr: float = 1e-3, seed: int = 0, total: int | None = None):  # fmt: skip
    """``model`` with a mouth read-out trained on ``clips`` (an iterable of ``(audio [S], motion [T, D])``): MSE of
    the normalised ``channels``, AdamW, seeded; returns ``(model, summary)``. The normalisation is folded into the
    last layer, so the read-out outputs motion units. ``total``: the number of clips, for a progress bar."""
    from tqdm import tqdm

    if not model.cfg.audio_posteriors:
        raise SplattalkError("the mouth read-out needs a model conditioned on phone posteriors (train_ar --audio-posteriors)")
    if context < 0 or not 0.0 <= weight <= 1.0 or hidden < 1 or epochs < 1:
        raise SplattalkError(f"read-out context must be ≥ 0, weight in [0, 1], hidden and epochs ≥ 1; got {context}, {weight}, {hidden}, {epochs}")
    model.eval()
    xs, ys = [], []
    for audio, motion in tqdm(clips, desc="read-out features", unit="clip", total=total, disable=total is None):
        T = motion.shape[0]
        feat = context_stack(window_features(model, audio, T), context)
        xs.append(feat.reshape(-1, feat.shape[-1])[:T].float())
        ys.append(torch.from_numpy(np.asarray(motion, np.float32)[:, list(channels)]))
    if not xs:
        raise SplattalkError("no training clips to fit the read-out on")
    x, y = torch.cat(xs), torch.cat(ys)
    mean, std = y.mean(0), y.std(0).clamp_min(1e-6)
    target = (y - mean) / std
    torch.manual_seed(seed)
    from splattalk.talk.generator import rebuilt

    cfg = replace(model.cfg, readout_context=context, readout_channels=tuple(channels), readout_hidden=hidden, readout_weight=weight)
    fitted = rebuilt(model, cfg, ("readout.",))
    net = fitted.readout.net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    steps = epochs * -(-len(x) // batch_size)
    bar = tqdm(total=steps, desc="read-out", unit="step", disable=total is None)
    first = last = None
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), batch_size):
                b = order[i : i + batch_size]
                loss = ((net(x[b]) - target[b]) ** 2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                first = loss.item() if first is None else first
                last = loss.item()
                bar.update()
    bar.close()
    net.eval()
    out_layer = net[-1]
    with torch.no_grad():  # outputs in motion units
        out_layer.weight.mul_(std[:, None])
        out_layer.bias.mul_(std).add_(mean)
    summary = {"frames": len(x), "context": context, "hidden": hidden, "epochs": epochs, "steps": steps, "weight": weight,
               "first_loss": first, "last_loss": last}  # fmt: skip
    return fitted.eval(), summary


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
    fitted, summary = fit_readout(model, clips, cfg.context, cfg.weight, tuple(channels), cfg.hidden, cfg.epochs, cfg.batch_size, cfg.lr,
                                  cfg.seed, total=len(train))  # fmt: skip
    save_talk_checkpoint(fitted, cfg.out, {"stage": "readout", "readout": str(summary)})
    print(summary)
    return Path(cfg.out)


def main() -> None:
    import tyro

    run(tyro.cli(ReadoutConfig))


if __name__ == "__main__":
    main()
