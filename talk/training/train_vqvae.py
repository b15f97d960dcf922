"""Stage 1: train the motion VQ-VAE (multi-scale BSQ) on motion windows.

Loss (motion normalised per channel by the training data's mean/std, which
become the model's ``motion_mean/std`` buffers): reconstruction MSE of both
windows (previous, encoded alone, and current, in its context; padded frames
past an utterance's end are masked) + ``velocity_weight`` × MSE of the
frame-to-frame differences + the BSQ ``commit`` and ``entropy`` terms
(ARTalk's weights 0.2 / 0.1). Evaluation reports, on held-out windows, the
reconstruction error when only the first k scales are decoded (how much each
scale adds) and code usage per scale (distinct codes / tokens, mean bit entropy).

    python -m splattalk.talk.training.train_vqvae --train.out runs/talk_vqvae --train.steps 1500
    torchrun --nproc-per-node 4 -m splattalk.talk.training.train_vqvae ...   # same, data-parallel

Writes ``OUT/vqvae.safetensors``: a whole talk model (our checkpoint format)
whose VQ-VAE and motion statistics are trained; stage 2 starts from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import tyro
from torch import nn

from splattalk.talk import bsq
from splattalk.talk.config import PRESETS
from splattalk.talk.generator import TalkModel
from splattalk.talk.training.dataset import NO_AUGMENT, WindowDataset, parse_source_weights
from splattalk.talk.training.train_common import (
    TrainConfig,
    config_dict,
    finish_stage,
    heldout_evaluator,
    set_motion_stats,
    setup,
    train_loop,
)

MODEL_FILE = "vqvae.safetensors"


@dataclass(frozen=True)
class VQVAETrainConfig:
    """Stage 1 (motion VQ-VAE) training."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig(out=Path("runs/talk_vqvae"), lr=1e-3, steps=1500))
    """Shared training options."""
    velocity_weight: float = 1.0
    """Weight of the velocity (frame difference) reconstruction loss."""
    commit_weight: float = 0.2
    """Weight of the BSQ commitment loss."""
    entropy_weight: float = 0.1
    """Weight of the BSQ entropy penalty (confident bits, spread code usage)."""
    residual_weight: float = 0.25
    """Weight of ‖f − f̂‖², the encoder features' distance to their quantization (residual-VQ commitment)."""


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over frames where ``mask: [B, T]`` is 1 (``pred, target: [B, T, D]``)."""
    err = ((pred - target) ** 2).mean(-1)
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


class VQVAELoss(nn.Module):
    """``batch`` → (loss, scalars) for the VQ-VAE; owns it so DDP can wrap this module."""

    def __init__(self, model: nn.Module, cfg: VQVAETrainConfig):
        super().__init__()
        self.model, self.cfg = model, cfg

    @property
    def vae(self) -> nn.Module:
        return self.model.basic_vae

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        prev, this, valid = batch["prev"], batch["this"], batch["valid"]
        out = self.reconstruct(prev, this)
        n = self.vae.normalize
        ones = torch.ones_like(valid)
        recon = 0.5 * (
            masked_mse(n(out["recon_prev"]), n(prev), ones) + masked_mse(n(out["recon_this"]), n(this), valid)
        )
        vel = 0.0
        for pred, target, mask in ((out["recon_prev"], prev, ones), (out["recon_this"], this, valid)):
            vel = vel + 0.5 * masked_mse(
                torch.diff(n(pred), dim=1), torch.diff(n(target), dim=1), mask[:, 1:] * mask[:, :-1]
            )
        c = self.cfg
        loss = (
            recon
            + c.velocity_weight * vel
            + c.commit_weight * out["commit"]
            + c.entropy_weight * out["entropy"]
            + c.residual_weight * out["residual"]
        )
        terms = (
            ("loss", loss),
            ("recon", recon),
            ("velocity", vel),
            ("commit", out["commit"]),
            ("entropy", out["entropy"]),
            ("residual", out["residual"]),
        )
        return loss, {k: v.item() for k, v in terms}

    def reconstruct(self, prev: torch.Tensor, this: torch.Tensor) -> dict[str, torch.Tensor]:
        """``MotionVQVAE.forward`` plus the quantization residual ‖f − f̂‖² of the encoder features.

        BSQ codes have unit norm at every scale; an encoder whose features are much
        longer than that makes every scale quantize the same direction (the residual
        hardly shrinks), so the fine scales carry nothing. Pulling f towards f̂ — the
        commitment loss of residual VQ — keeps the features on the codes' scale.
        """
        vae, W = self.vae, self.vae.window
        feat = vae.encode_features(prev, this)
        prev_hat, prev_bits, prev_losses = bsq.quantize(feat[:, :W], vae.scales)
        this_hat, this_bits, this_losses = bsq.quantize(feat[:, W:], vae.scales)
        recon_prev, recon_this = vae.decode_features(prev_hat, this_hat)
        residual = ((feat - torch.cat([prev_hat, this_hat], dim=1).detach()) ** 2).sum(-1).mean()
        return {
            "recon_prev": recon_prev,
            "recon_this": recon_this,
            "prev_bits": prev_bits,
            "this_bits": this_bits,
            "commit": prev_losses["commit"] + this_losses["commit"],
            "entropy": prev_losses["entropy"] + this_losses["entropy"],
            "residual": residual,
        }


@torch.no_grad()
def evaluate_vqvae(vae, batch: dict) -> dict[str, float]:
    """Held-out reconstruction error (normalised MSE) decoding scales 1..k, and code usage per scale."""
    vae.eval()
    prev, this, valid = batch["prev"], batch["this"], batch["valid"]
    W, scales = vae.window, vae.scales
    feat = vae.encode_features(prev, this)
    prev_hat, _, _ = bsq.quantize(feat[:, :W], scales, losses=False)
    _, bits, _ = bsq.quantize(feat[:, W:], scales, losses=False)
    codes = bsq.split_scales(bsq.bits_to_codes(bits), scales)
    row: dict[str, float] = {}
    acc = torch.zeros_like(feat[:, W:])
    for k, (n, c) in enumerate(zip(scales, codes)):
        acc = acc + bsq.upsample(c, W)
        _, recon = vae.decode_features(prev_hat, acc)
        row[f"recon@{n}"] = float(masked_mse(vae.normalize(recon), vae.normalize(this), valid))
        b = bits[:, sum(scales[:k]) : sum(scales[: k + 1])].reshape(-1, bits.shape[-1])
        row[f"unique@{n}"] = len(torch.unique(b, dim=0)) / b.shape[0]
        p = b.float().mean(0).clamp(1e-6, 1 - 1e-6)
        row[f"bit_entropy@{n}"] = float((-(p * p.log2() + (1 - p) * (1 - p).log2())).mean())
    row["recon"] = row[f"recon@{scales[-1]}"]
    row["feature_norm"] = float(feat[:, W:].norm(dim=-1).mean())
    jaw = vae.motion_mean.shape[0] - 3
    row["jaw_mae_rad"] = float(((recon[..., jaw] - this[..., jaw]).abs() * valid).sum() / valid.sum())
    return row


def build_datasets(cfg: TrainConfig, model_cfg, with_audio: bool) -> tuple[WindowDataset, WindowDataset | None]:
    d = cfg.data
    common = dict(
        window=model_cfg.window,
        context_frames=model_cfg.audio_context_frames,
        style_frames=model_cfg.style_frames,
        exclude_speakers=d.exclude_speakers,
        seed=cfg.seed,
        with_audio=with_audio,
    )
    weights = parse_source_weights(d.source_weights)
    train = WindowDataset(d.corpus, "train", jitter=d.jitter, augment=d.augment, source_weights=weights, **common)
    try:
        held = WindowDataset(d.corpus, "heldout", jitter=False, augment=NO_AUGMENT, **common)
    except Exception:  # noqa: BLE001 - a corpus without held-out material trains without evaluation
        held = None
    if train.motion_dim != model_cfg.motion_dim:
        raise SystemExit(
            f"error: corpus motion has {train.motion_dim} channels, "
            f"the '{model_cfg.name}' preset expects {model_cfg.motion_dim}"
        )
    return train, held


def data_summary(ds: WindowDataset | None) -> dict:
    if ds is None:
        return {}
    groups: dict[str, int] = {}
    for g in ds.window_group:
        groups[str(g)] = groups.get(str(g), 0) + 1
    return {
        "utterances": len(ds.clips),
        "windows": len(ds),
        "hours": round(ds.hours, 3),
        "speakers": len(ds.speakers),
        "windows_by_source": groups,
        "source_weights": ds.source_weights,
    }


def run(cfg: VQVAETrainConfig) -> Path:
    """Train stage 1; returns the written model file."""
    t = cfg.train
    dist = setup(t)
    model_cfg = PRESETS[t.preset]
    train, held = build_datasets(t, model_cfg, with_audio=False)
    model = TalkModel(model_cfg).to(dist.device)
    set_motion_stats(model, *train.motion_stats())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.basic_vae.parameters():
        p.requires_grad_(True)
    loss_module = VQVAELoss(model, cfg)
    config = {
        "stage": "vqvae",
        "config": config_dict(cfg),
        "model": config_dict(model_cfg),
        "train_data": data_summary(train),
        "heldout_data": data_summary(held),
        "torch": torch.__version__,
        "world": dist.world,
    }
    evaluate = heldout_evaluator(t, dist, held, lambda batch: evaluate_vqvae(model.basic_vae, batch))

    train_loop(t, dist, loss_module, train, config, evaluate, desc="vqvae")
    return finish_stage(t, dist, model, MODEL_FILE, "vqvae")


def main() -> None:
    run(tyro.cli(VQVAETrainConfig))


if __name__ == "__main__":
    main()
