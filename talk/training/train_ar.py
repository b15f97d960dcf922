"""Stage 2: train the autoregressive generator (with its audio and style encoders) on a frozen VQ-VAE.

For each window: the VQ-VAE encodes the previous and current motion
(``prev_bits`` equal the previous window encoded alone, which is what inference
feeds back; the first window's previous motion is the all-zero still window,
as at inference). The AR transformer sees the audio condition of the window
(with its left context), the style token and the previous window's tokens as
prefix, and is trained by bitwise cross-entropy on all 181 tokens × 32 bits
with teacher forcing (the inputs of scale k are the true codes of scales < k).
Style dropout: with probability ``style_dropout`` the style token (and the
prefix built with it) is the learned null style, so one model serves both
terms of classifier-free guidance.

    python -m splattalk.talk.training.train_ar --vqvae runs/talk_vqvae/vqvae.safetensors --train.out runs/talk_ar

Writes ``OUT/talk.safetensors``, a complete talk model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
import tyro
from torch import nn

from splattalk.errors import SplattalkError
from splattalk.talk import bsq
from splattalk.talk.audio_encoder import LogMelEncoder, MelAugment, encode_augmented, pool_per_scale
from splattalk.talk.checkpoint import load_talk_checkpoint
from splattalk.talk.config import PHONE_SET
from splattalk.talk.generator import TalkModel
from splattalk.talk.training.train_common import (
    TrainConfig,
    config_dict,
    finish_stage,
    frame_phone_loss,
    heldout_evaluator,
    setup,
    train_loop,
)
from splattalk.talk.training.train_frontend import adopt_frontend
from splattalk.talk.training.train_vqvae import build_datasets, data_summary, masked_mse

MODEL_FILE = "talk.safetensors"


@dataclass(frozen=True)
class ARTrainConfig:
    """Stage 2 (autoregressive generator) training."""

    vqvae: Path = Path("runs/talk_vqvae/vqvae.safetensors")
    """Stage-1 model file (its VQ-VAE is frozen; everything else starts from it)."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out=Path("runs/talk_ar"), lr=1e-3, steps=3000))
    """Shared training options (``preset`` must match the stage-1 model)."""
    style_dropout: float = 0.2
    """Chance per window of training with the null style (classifier-free guidance)."""
    audio_aux_weight: float = 0.5
    """Weight of the auxiliary loss regressing each frame's motion from its audio features (0: off)."""
    phone_weight: float = 0.5
    """Weight of the auxiliary cross-entropy classifying each frame's phone from its audio features
    (0: off; frames of clips without phone timings are ignored)."""
    frontend: Path | None = None
    """Stage-1b file (``train_frontend``) whose pre-trained audio front-end this stage starts from
    (None: the front-end trains from scratch here)."""
    frontend_lr_scale: float = 1.0
    """Learning-rate factor of the audio front-end (0: frozen, as the pre-trained one usually is)."""
    audio_dropout: float = 0.0
    """Chance per window of training with the null (all-zero) audio condition, so the model also serves audio
    guidance (``TalkConfig.audio_cfg_scale``). Drawn disjoint from style dropout: never both in one window."""
    augment: bool = True
    """Spectrum augmentation of the training windows' audio (log-mel front-ends; the wav2vec2 front-end
    has none): the generator learns to read features of voices and microphones it has not heard."""
    mel_augment: MelAugment = field(default_factory=MelAugment)
    """The augmentation's settings (as stage 1b's)."""
    ar_depth: int | None = None
    """AR transformer blocks (None: the stage-1 model's preset)."""
    audio_posteriors: bool = False
    """Condition the generator on the front-end's frame phone posteriors and relative energy instead of its
    features (``TalkConfig.audio_posteriors``); needs ``--frontend``, whose phone classifier it reads."""


class ARLoss(nn.Module):
    """``batch`` → (bitwise cross-entropy [+ audio auxiliary loss], scalars); the VQ-VAE inside is frozen.

    Two auxiliary heads (training only, not part of the saved model) read the audio
    encoder's frame features: one regresses the window's normalised motion, one
    classifies the phone spoken at each frame (the corpus' phone timings). Both are
    dense, direct signals that teach the audio front-end what was said and what the
    face does, which the bitwise cross-entropy alone conveys slowly: with the motion
    head alone a linear read-out of the features reached only LVE 3.6 mm on held-out
    clips (the generator 3.8), so the front-end, not the decoder, limited lip sync.
    """

    def __init__(
        self,
        model,
        style_dropout: float,
        audio_aux_weight: float = 0.0,
        phone_weight: float = 0.0,
        frontend_lr_scale: float = 1.0,
        augment: MelAugment | None = None,
        audio_dropout: float = 0.0,
    ):
        super().__init__()
        if style_dropout + audio_dropout > 1.0:
            raise SplattalkError(
                f"style dropout {style_dropout} + audio dropout {audio_dropout} exceed 1 (they are drawn disjoint)"
            )
        self.model, self.style_dropout, self.audio_aux_weight = model, style_dropout, audio_aux_weight
        self.audio_dropout = audio_dropout
        self.augment = augment if isinstance(model.audio_encoder, LogMelEncoder) else None
        """Training-time spectrum augmentation (None: off, and always for a wav2vec2 front-end)."""
        self.lr_scales = {"model.audio_encoder.": frontend_lr_scale}
        """Read by ``train_loop``'s optimizer (a frozen front-end has no trainable parameters)."""
        self.audio_aux = nn.Linear(model.cfg.audio_dim, model.cfg.motion_dim) if audio_aux_weight > 0 else None
        self.phone_weight = phone_weight
        self.phone_head = nn.Linear(model.cfg.audio_dim, len(PHONE_SET)) if phone_weight > 0 else None
        self.frozen_frontend = frontend_lr_scale <= 0

    def train(self, mode: bool = True) -> ARLoss:
        """A frozen front-end stays in eval mode (its dropout off): it gives the features inference sees."""
        super().train(mode)
        if self.frozen_frontend:
            self.model.audio_encoder.eval()
        return self

    def phone_loss(self, feat: torch.Tensor, phone: torch.Tensor) -> tuple[torch.Tensor, float] | None:
        """Frame phone cross-entropy and accuracy over labelled frames (None when the batch has none)."""
        return None if self.phone_head is None else frame_phone_loss(self.phone_head(feat), phone)

    def logits(
        self, batch: dict, drop: torch.Tensor, augment: bool = False, drop_audio: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced logits ``[B, L, C, 2]``, target bits ``[B, L, C]`` and the audio frame features
        ``[B, W, audio_dim]``; ``drop: [B]`` bool picks the null style, ``drop_audio: [B]`` the null audio
        condition; ``augment`` applies :attr:`augment`."""
        m = self.model
        with torch.no_grad():
            prev_bits, bits = m.basic_vae.encode(batch["prev"], batch["this"])
        feat = m.audio_in(
            encode_augmented(m.audio_encoder, batch["audio"], batch["u"], self.augment if augment else None)
        )
        cond = pool_per_scale(feat, m.scales)
        if drop_audio is not None:
            cond = torch.where(drop_audio[:, None, None], torch.zeros_like(cond), cond)
        style = m.style_condition(batch["style_clip"], cfg_scale=1.0)
        style = torch.where(drop[:, None, None], m.null_style_cond.expand_as(style), style)
        prefix = m.window_tokens(prev_bits, style).repeat(1, m.cfg.prev_windows, 1)
        return m(cond, bits, prefix, style), bits, feat

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        u = batch["u"]
        logits, bits, feat = self.logits(
            batch, u < self.style_dropout, augment=True, drop_audio=u >= 1.0 - self.audio_dropout
        )
        ce = F.cross_entropy(logits.reshape(-1, 2).float(), bits.reshape(-1))
        values = {"ce": ce.item(), "bit_acc": float((logits.argmax(-1) == bits).float().mean())}
        loss = ce
        if self.audio_aux is not None:
            target = self.model.basic_vae.normalize(batch["this"])
            aux = masked_mse(self.audio_aux(feat), target, batch["valid"])
            loss = loss + self.audio_aux_weight * aux
            values["audio_aux"] = aux.item()
        phone = self.phone_loss(feat, batch["phone"]) if "phone" in batch else None
        if phone is not None:
            loss = loss + self.phone_weight * phone[0]
            values["phone_ce"], values["phone_acc"] = phone[0].item(), phone[1]
        elif (
            self.phone_head is not None
        ):  # no labelled frame: keep the head in the graph (DDP wants every parameter used)
            loss = loss + 0.0 * sum(p.sum() for p in self.phone_head.parameters())
        values["loss"] = loss.item()
        return loss, values


@torch.no_grad()
def evaluate_ar(loss: ARLoss, batch: dict) -> dict[str, float]:
    """Held-out cross-entropy and bit accuracy per scale (with the true style), and the jaw error of the
    teacher-forced greedy bits decoded to motion (rad, valid frames)."""
    m = loss.model
    m.eval()
    B = batch["prev"].shape[0]
    logits, bits, feat = loss.logits(batch, torch.zeros(B, dtype=torch.bool, device=bits_device(batch)))
    row: dict[str, float] = {"ce": float(F.cross_entropy(logits.reshape(-1, 2), bits.reshape(-1)))}
    phone = loss.phone_loss(feat, batch["phone"]) if "phone" in batch else None
    if phone is not None:
        row["phone_acc"] = phone[1]
    pred = logits.argmax(-1)
    for n, p, b in zip(m.scales, bsq.split_scales(pred, m.scales), bsq.split_scales(bits, m.scales)):
        row[f"bit_acc@{n}"] = float((p == b).float().mean())
    prev_bits, _ = m.basic_vae.encode(batch["prev"])
    _, motion = m.basic_vae.decode(prev_bits, pred)
    jaw, valid = m.cfg.expr_dim + 3, batch["valid"]
    row["jaw_mae_rad"] = float(((motion[..., jaw] - batch["this"][..., jaw]).abs() * valid).sum() / valid.sum())
    return row


def bits_device(batch: dict) -> torch.device:
    return batch["prev"].device


def run(cfg: ARTrainConfig) -> Path:
    """Train stage 2; returns the written model file."""
    t = cfg.train
    dist = setup(t)
    if not Path(cfg.vqvae).is_file():
        raise SplattalkError(
            f"stage-1 model {cfg.vqvae} not found; train it first with python -m splattalk.talk.training.train_vqvae"
        )
    if cfg.ar_depth is not None and cfg.ar_depth < 1:
        raise SplattalkError(f"--ar-depth must be at least 1 (AR transformer blocks), got {cfg.ar_depth}")
    model = load_talk_checkpoint(cfg.vqvae)
    if model.cfg.name != t.preset:
        raise SplattalkError(f"{cfg.vqvae} is a '{model.cfg.name}' model but --train.preset is '{t.preset}'")
    # A new model that copies in the stage-1 file's VQ-VAE: training gets its own writable tensors
    # (load_talk_checkpoint maps the file's in place).
    torch.manual_seed(t.seed)
    if cfg.audio_posteriors and cfg.frontend is None:
        raise SplattalkError(
            "--audio-posteriors reads a pre-trained front-end's phone classifier: "
            "give --frontend (a train_frontend file)"
        )
    model = _fresh_generator(model.to(dist.device), cfg.ar_depth, cfg.audio_posteriors)
    if cfg.frontend is not None:
        adopt_frontend(model, cfg.frontend)
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    for p in model.basic_vae.parameters():
        p.requires_grad_(False)
    if cfg.frontend_lr_scale <= 0:
        for p in model.audio_encoder.parameters():
            p.requires_grad_(False)
    train, held = build_datasets(t, model.cfg, with_audio=True)
    loss_module = ARLoss(
        model,
        cfg.style_dropout,
        cfg.audio_aux_weight,
        cfg.phone_weight,
        cfg.frontend_lr_scale,
        cfg.mel_augment if cfg.augment else None,
        cfg.audio_dropout,
    ).to(dist.device)
    config = {
        "stage": "ar",
        "config": config_dict(cfg),
        "model": config_dict(model.cfg),
        "train_data": data_summary(train),
        "heldout_data": data_summary(held),
        "torch": torch.__version__,
        "world": dist.world,
    }
    evaluate = heldout_evaluator(t, dist, held, lambda batch: evaluate_ar(loss_module, batch))

    train_loop(t, dist, loss_module, train, config, evaluate, desc="generator")
    return finish_stage(t, dist, model, MODEL_FILE, "ar")


def _fresh_generator(model: TalkModel, ar_depth: int | None = None, audio_posteriors: bool = False) -> TalkModel:
    """A model with ``model``'s VQ-VAE and motion statistics and fresh, seeded weights for everything else.

    The stage-1 file carries a randomly initialised generator; re-drawing it from
    ``--train.seed`` makes stage 2's start depend on its own seed only. ``ar_depth``
    (None: the stage-1 file's) sets the number of AR blocks; ``audio_posteriors`` the generator's audio condition.
    """
    cfg = replace(
        model.cfg, ar_depth=model.cfg.ar_depth if ar_depth is None else ar_depth, audio_posteriors=audio_posteriors
    )
    fresh = type(model)(cfg).to(next(model.parameters()).device)
    keep = {
        k: v
        for k, v in model.state_dict().items()
        if k.startswith("basic_vae.") or k.endswith("motion_mean") or k.endswith("motion_std")
    }
    fresh.load_state_dict(keep, strict=False)
    return fresh


def main() -> None:
    run(tyro.cli(ARTrainConfig))


if __name__ == "__main__":
    main()
