"""Fitting the mouth read-out (:class:`splattalk.talk.readout.MouthReadout`) of a posterior-conditioned model.

After stage 2 (``train_ar --audio-posteriors``): the frozen front-end's features of every training clip,
stacked over ``context`` frames on each side, regress the clip's normalised mouth and jaw columns (MSE,
seeded AdamW); the result is the stage-2 model with its read-out at weight ``weight``.

    python -m splattalk.talk.training.readout --model runs/ar/talk.safetensors --out runs/ar/talk_readout.safetensors \\
        --corpus ~/.cache/splattalk/corpus
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import tyro
from tqdm import tqdm

from splattalk.errors import SplattalkError
from splattalk.talk.checkpoint import load_talk_checkpoint, save_talk_checkpoint
from splattalk.talk.corpus.layout import DEFAULT_CORPUS, MOUTH_CHANNELS, load_clip, read_manifest
from splattalk.talk.generator import rebuilt
from splattalk.talk.inference import pad_for_windows
from splattalk.talk.readout import context_stack


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
    cfg = model.cfg
    n = -(-frames // cfg.window)
    x = torch.from_numpy(pad_for_windows(audio, n, cfg))
    wins = [
        x[w * cfg.window_samples : w * cfg.window_samples + cfg.context_samples + cfg.window_samples] for w in range(n)
    ]
    return model.audio_encoder(torch.stack(wins))


def fit_readout(
    model,
    clips,
    context: int,
    weight: float,
    channels: tuple[int, ...],
    hidden: int = 256,
    epochs: int = 8,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    total: int | None = None,
):
    """``model`` with a mouth read-out trained on ``clips`` (an iterable of ``(audio [S], motion [T, D])``): MSE of
    the normalised ``channels``, AdamW, seeded; returns ``(model, summary)``. The normalisation is folded into the
    last layer, so the read-out outputs motion units. ``total``: the number of clips, for a progress bar."""
    if not model.cfg.audio_posteriors:
        raise SplattalkError(
            "the mouth read-out needs a model conditioned on phone posteriors "
            "(splattalk.talk.training.train_ar --audio-posteriors)"
        )
    if context < 0 or not 0.0 <= weight <= 1.0 or hidden < 1 or epochs < 1:
        raise SplattalkError(
            "read-out context must be ≥ 0, weight in [0, 1], hidden and epochs ≥ 1; "
            f"got {context}, {weight}, {hidden}, {epochs}"
        )
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
    cfg = replace(
        model.cfg,
        readout_context=context,
        readout_channels=tuple(channels),
        readout_hidden=hidden,
        readout_weight=weight,
    )
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
    summary = {
        "frames": len(x),
        "context": context,
        "hidden": hidden,
        "epochs": epochs,
        "steps": steps,
        "weight": weight,
        "first_loss": first,
        "last_loss": last,
    }
    return fitted.eval(), summary


def run(cfg: ReadoutConfig) -> Path:
    torch.set_num_threads(max(1, cfg.threads))
    corpus = cfg.corpus or DEFAULT_CORPUS
    model = load_talk_checkpoint(cfg.model)
    train = read_manifest(corpus, "train")
    channels = model.cfg.expected_channels or MOUTH_CHANNELS
    clips = ((c.audio, c.motion) for c in (load_clip(corpus, u) for u in train))
    fitted, summary = fit_readout(
        model,
        clips,
        cfg.context,
        cfg.weight,
        tuple(channels),
        cfg.hidden,
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        cfg.seed,
        total=len(train),
    )
    save_talk_checkpoint(fitted, cfg.out, {"stage": "readout", "readout": str(summary)})
    print(summary)
    return Path(cfg.out)


def main() -> None:
    run(tyro.cli(ReadoutConfig))


if __name__ == "__main__":
    main()
