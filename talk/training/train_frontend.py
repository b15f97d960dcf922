"""Stage 1b: pre-train the light log-mel audio front-end to hear phones, on its own.

ARTalk's front-end arrives pre-trained (wav2vec2 already knows speech); ours
starts from nothing. Trained only through the generator's bitwise
cross-entropy (plus auxiliary heads), it learnt the training voices and
generalised poorly to new ones (phone accuracy 81 % on training windows, 67 %
held out). This stage trains the front-end alone, which is several times
cheaper per window than the generator, so it sees far more audio in the same
time, under augmentation that imitates unseen speakers and microphones
(:class:`~splattalk.talk.audio_encoder.MelAugment`: vocal-tract-length warp,
random equaliser, SpecAugment masks). Two linear heads read its frame features:

* frame phone classification over :data:`~splattalk.talk.config.PHONE_SET`
  (the corpus' phone timings; frames without labels are ignored), and
* regression of the frame's normalised motion (what the face does).

Stage 2 (``train_ar --frontend OUT/frontend.safetensors``) starts its audio
encoder from this one. It runs independently of stage 1 (the VQ-VAE), so the
two can train at the same time on two cores.

    python -m splattalk.talk.training.train_frontend --train.out runs/talk_frontend --train.steps 4000
    torchrun --nproc-per-node 4 -m splattalk.talk.training.train_frontend ...   # same, data-parallel

Writes ``OUT/frontend.safetensors``: a whole talk model (our checkpoint format)
whose audio encoder is trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import tyro
from torch import nn

from splattalk.errors import SplattalkError
from splattalk.talk.audio_encoder import MelAugment, build_audio_encoder, encode_augmented
from splattalk.talk.checkpoint import load_talk_checkpoint
from splattalk.talk.config import PHONE_SET, PRESETS, TalkConfig
from splattalk.talk.generator import TalkModel, rebuilt
from splattalk.talk.training.train_common import (
    TrainConfig,
    config_dict,
    finish_stage,
    frame_phone_loss,
    heldout_evaluator,
    set_motion_stats,
    setup,
    train_loop,
)
from splattalk.talk.training.train_vqvae import build_datasets, data_summary, masked_mse

MODEL_FILE = "frontend.safetensors"
AUDIO_FIELDS = ("audio_encoder", "audio_dim", "audio_context_frames", "n_mels", "logmel_layers", "logmel_dropout")
"""The config fields that shape the log-mel front-end (the generator depends only on ``audio_dim``)."""


@dataclass(frozen=True)
class FrontendTrainConfig:
    """Stage 1b (audio front-end) training."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig(out=Path("runs/talk_frontend"), lr=1e-3, steps=4000))
    """Shared training options."""
    augment: MelAugment = MelAugment()
    """Augmentation of each training window's spectrum."""
    phone_weight: float = 1.0
    """Weight of the frame phone cross-entropy."""
    motion_weight: float = 1.0
    """Weight of the frame motion regression (normalised MSE)."""
    logmel_layers: int | None = None
    """Transformer layers of the front-end (None: the preset's)."""
    logmel_dropout: float | None = None
    """Dropout in the front-end's transformer layers (None: the preset's)."""


class FrontendLoss(nn.Module):
    """``batch`` → (phone cross-entropy + motion regression, scalars) for the audio encoder of ``model``."""

    def __init__(self, model: TalkModel, cfg: FrontendTrainConfig, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        c = model.cfg
        self.encoder, self.cfg = model.audio_encoder, cfg
        self.phone_head = nn.Linear(c.audio_dim, len(PHONE_SET))
        self.motion_head = nn.Linear(c.audio_dim, c.motion_dim)
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())

    def features(self, batch: dict, augment: bool) -> torch.Tensor:
        return encode_augmented(self.encoder, batch["audio"], batch["u"], self.cfg.augment if augment else None)

    def terms(self, batch: dict, augment: bool) -> dict[str, torch.Tensor]:
        feat = self.features(batch, augment)
        target = (batch["this"] - self.mean) / self.std
        motion = self.motion_head(feat)
        out = {"motion": masked_mse(motion, target, batch["valid"])}
        logits = self.phone_head(feat)
        phone = frame_phone_loss(logits, batch["phone"])
        if phone is not None:
            out["phone_ce"], out["phone_acc"] = phone
        else:  # keep the head in the graph (DDP wants every parameter used)
            out["phone_ce"] = 0.0 * logits.sum()
        jaw = self.mean.shape[0] - 3
        pred_jaw = motion[..., jaw] * self.std[jaw] + self.mean[jaw]
        valid = batch["valid"]
        out["jaw_mae_rad"] = ((pred_jaw - batch["this"][..., jaw]).abs() * valid).sum() / valid.sum().clamp_min(1.0)
        return out

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        t = self.terms(batch, augment=True)
        loss = self.cfg.phone_weight * t["phone_ce"] + self.cfg.motion_weight * t["motion"]
        values = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in t.items()}
        values["loss"] = loss.item()
        return loss, values


@torch.no_grad()
def evaluate_frontend(loss: FrontendLoss, batch: dict) -> dict[str, float]:
    """Held-out phone accuracy, motion error (normalised MSE) and jaw error of the linear read-outs
    (no augmentation)."""
    loss.eval()
    return {k: float(v) for k, v in loss.terms(batch, augment=False).items()}


def frontend_config(preset: TalkConfig, layers: int | None, dropout: float | None = None) -> TalkConfig:
    if preset.audio_encoder != "logmel":
        raise SplattalkError(
            f"the '{preset.name}' preset uses the {preset.audio_encoder} encoder; "
            "only the log-mel front-end is pre-trained here"
        )
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise SplattalkError(f"front-end dropout must be in [0, 1), got {dropout}")
    changes = {k: v for k, v in (("logmel_layers", layers), ("logmel_dropout", dropout)) if v is not None}
    return replace(preset, **changes)


def run(cfg: FrontendTrainConfig) -> Path:
    """Train stage 1b; returns the written model file."""
    t = cfg.train
    dist = setup(t)
    model_cfg = frontend_config(PRESETS[t.preset], cfg.logmel_layers, cfg.logmel_dropout)
    train, held = build_datasets(t, model_cfg, with_audio=True)
    model = TalkModel(model_cfg).to(dist.device)
    mean, std = (torch.from_numpy(a) for a in train.motion_stats())
    set_motion_stats(model, mean, std)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.audio_encoder.parameters():
        p.requires_grad_(True)
    loss_module = FrontendLoss(model, cfg, mean, std).to(dist.device)
    config = {
        "stage": "frontend",
        "config": config_dict(cfg),
        "model": config_dict(model_cfg),
        "train_data": data_summary(train),
        "heldout_data": data_summary(held),
        "torch": torch.__version__,
        "world": dist.world,
    }
    evaluate = heldout_evaluator(t, dist, held, lambda batch: evaluate_frontend(loss_module, batch))

    train_loop(t, dist, loss_module, train, config, evaluate, desc="front-end")
    return finish_stage(t, dist, with_phone_head(model, loss_module.phone_head), MODEL_FILE, "frontend")


def with_phone_head(model: TalkModel, head: nn.Linear) -> TalkModel:
    """``model`` with the trained frame phone classifier ``head`` inside its front-end: what a stage-1b file
    carries, so stage 2 can condition on phone posteriors (``--audio-posteriors``); it drops the head otherwise."""
    out = rebuilt(model, replace(model.cfg, audio_posteriors=True), ("audio_encoder.phone_head.", "audio_in."))
    out.audio_encoder.phone_head.load_state_dict(head.state_dict())
    return out


def adopt_frontend(model: TalkModel, path: Path) -> TalkModel:
    """``model`` with the audio encoder (and its config fields) of the stage-1b file at ``path``."""
    if not Path(path).is_file():
        raise SplattalkError(
            f"front-end model {path} not found; train it with python -m splattalk.talk.training.train_frontend"
        )
    source = load_talk_checkpoint(path)
    if source.cfg.audio_encoder != model.cfg.audio_encoder or source.cfg.audio_dim != model.cfg.audio_dim:
        raise SplattalkError(
            f"{path} has a {source.cfg.audio_encoder} front-end of width {source.cfg.audio_dim}; "
            f"the model needs {model.cfg.audio_encoder} of width {model.cfg.audio_dim}"
        )
    state = source.audio_encoder.state_dict()
    if model.cfg.audio_posteriors and getattr(source.audio_encoder, "phone_head", None) is None:
        raise SplattalkError(
            f"{path} carries no phone classifier (written before front-end files did); rerun its "
            "python -m splattalk.talk.training.train_frontend command with the same --train.out to write it again"
        )
    if not model.cfg.audio_posteriors:
        state = {k: v for k, v in state.items() if not k.startswith("phone_head.")}
    model.cfg = replace(model.cfg, **{k: getattr(source.cfg, k) for k in AUDIO_FIELDS})
    device = next(model.parameters()).device
    model.audio_encoder = build_audio_encoder(model.cfg).to(device)
    model.audio_encoder.load_state_dict({k: v.clone() for k, v in state.items()})
    return model


def main() -> None:
    run(tyro.cli(FrontendTrainConfig))


if __name__ == "__main__":
    main()
