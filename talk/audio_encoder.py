"""Audio encoders behind one interface: a window of 16 kHz audio → feature frames.

Every encoder is called on one motion window at a time (W frames = W·640
samples), preceded by ``context_samples`` of the audio before it (zeros before
the start). Windowed encoding is what makes streaming and whole-file
generation compute exactly the same thing: a window's features never depend
on audio after it, nor on more audio before it than the fixed context.

* :class:`Wav2Vec2Encoder` — wav2vec2 in the XLS-R 300M layout (the official
  model's encoder; 50 feature frames a second, 199 per 4-s window), random
  init, weights only from a checkpoint. No context: ARTalk encodes each window alone.
* :class:`LogMelEncoder` — light front-end for our own models: log-mel (25 ms /
  10 ms), 4 mel frames stacked per motion frame, a conv and a small
  transformer; exactly W frames (25 fps) per window, with left context.

The generator pools the frames to each scale (:func:`pool_per_scale`), so
either frame rate works; at the finest scale both give 25 fps.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from splattalk.talk.config import PHONE_SET, SAMPLE_RATE, SAMPLES_PER_FRAME, TalkConfig

N_FFT = 400
"""25 ms analysis window."""
HOP = 160
"""10 ms hop: 4 mel frames per motion frame."""
MELS_PER_FRAME = SAMPLES_PER_FRAME // HOP


def xlsr_300m_config(layers: int = 24, hidden: int = 1024, conv_dim: int = 512):
    """``transformers.Wav2Vec2Config`` of facebook/wav2vec2-xls-r-300m, built in code (nothing downloaded).

    ``layers``/``hidden``/``conv_dim`` shrink it for tests only; the official model uses 24 / 1024.
    """
    from transformers import Wav2Vec2Config  # lazy: a slow import; only wav2vec2 needs it

    heads = 16 if hidden % 16 == 0 and hidden >= 256 else 2
    return Wav2Vec2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        hidden_act="gelu",
        hidden_dropout=0.1,
        attention_dropout=0.1,
        activation_dropout=0.0,
        feat_proj_dropout=0.1,
        layerdrop=0.1,
        layer_norm_eps=1e-5,
        feat_extract_norm="layer",
        feat_extract_activation="gelu",
        conv_dim=(conv_dim,) * 7,
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_bias=True,
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
        do_stable_layer_norm=True,
        apply_spec_augment=True,
        mask_time_prob=0.075,
        mask_time_length=10,
        mask_feature_prob=0.0,
        vocab_size=32,
        num_codevector_groups=2,
        num_codevectors_per_group=320,
        codevector_dim=768,
        proj_codevector_dim=768,
    )


@functools.cache
def wav2vec2_class():
    from transformers import Wav2Vec2Model  # lazy: a slow import; only wav2vec2 needs it

    class Wav2Vec2Encoder(Wav2Vec2Model):
        """wav2vec2 (transformers) encoding one window; keys match ``audio_encoder.*`` of the official checkpoint."""

        context_samples = 0

        def forward(self, audio: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            """``audio: [B, S]`` → hidden states ``[B, ~S/320, hidden]``; each window normalised on its own."""
            audio = (audio - audio.mean(-1, keepdim=True)) / (audio.std(-1, keepdim=True) + 1e-6)
            h = self.feature_extractor(audio).transpose(1, 2)
            h = self.feature_projection(h)[0]
            return self.encoder(h)[0]

    return Wav2Vec2Encoder


def mel_filterbank(
    n_mels: int, n_fft: int = N_FFT, sr: int = SAMPLE_RATE, fmin: float = 20.0, fmax: float = 7600.0
) -> np.ndarray:
    """Triangular HTK-mel filters ``[n_fft//2 + 1, n_mels]``, each normalised to unit area (Slaney style)."""

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    lower = (freqs[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])[None]
    upper = (edges[None, 2:] - freqs[:, None]) / (edges[2:] - edges[1:-1])[None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[None]
    return weights.astype(np.float32)


def log_mel(
    audio: torch.Tensor, filters: torch.Tensor, window: torch.Tensor, warp: torch.Tensor | None = None
) -> torch.Tensor:
    """``audio: [B, S]`` (S a multiple of 160) → log-mel ``[B, S/160, n_mels]``.

    Frame i covers samples [160·i − 240, 160·i + 160): it ends where its hop ends,
    so a frame never looks past its own 10 ms (zeros before the start).
    ``warp: [B]`` (training only) stretches each item's spectrum along frequency by
    that factor before the mel filters: vocal-tract-length perturbation, which makes
    one voice sound like a longer or shorter vocal tract.
    """
    x = F.pad(audio, (N_FFT - HOP, 0))
    spec = torch.stft(x, N_FFT, HOP, window=window, center=False, return_complex=True)
    power = spec.real**2 + spec.imag**2
    if warp is not None:
        power = warp_frequency(power, warp)
    return torch.log(torch.einsum("bft,fm->btm", power, filters) + 1e-6)


def warp_frequency(power: torch.Tensor, warp: torch.Tensor) -> torch.Tensor:
    """``power: [B, F, T]`` with bin k of item b taking the (interpolated) value of bin k / warp[b]."""
    n = power.shape[1]
    src = (torch.arange(n, device=power.device, dtype=power.dtype)[None] / warp[:, None]).clamp(max=n - 1)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    frac = (src - lo)[..., None]
    pick = lambda idx: torch.gather(power, 1, idx[..., None].expand(-1, -1, power.shape[2]))  # noqa: E731
    return pick(lo) * (1 - frac) + pick(hi) * frac


@dataclass(frozen=True)
class MelAugment:
    """Front-end augmentation drawn per training window (none at inference).

    Speaker variety the corpus lacks: vocal-tract-length warp of the spectrum and a
    random smooth equaliser curve over the mel bands (microphones, rooms, voices);
    and SpecAugment's band and time masks, so no single band or instant is relied on.
    """

    warp: float = 0.12
    """Spectrum stretch factor uniform in [1 − warp, 1 + warp]."""
    eq_db: float = 6.0
    """Peak gain of the random equaliser curve (dB, a smooth curve of 4 cosines over the mel axis)."""
    freq_masks: int = 2
    """Mel-band masks per window."""
    freq_width: int = 8
    """Most mel bands one mask covers."""
    time_masks: int = 3
    """Time masks per window."""
    time_width: int = 6
    """Most 10-ms mel frames one time mask covers."""


def draw_mel_augment(
    aug: MelAugment, batch: int, frames: int, n_mels: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """One draw of :class:`MelAugment` for a batch: ``warp [B]``, additive log-mel ``eq [B, 1, M]``,
    ``keep [B, frames, M]``."""
    u = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    warp = 1.0 + aug.warp * (2 * u(batch) - 1)
    k = torch.arange(1, 5, dtype=torch.float32)
    axis = torch.linspace(0, math.pi, n_mels)
    curve = (torch.cos(k[:, None] * axis[None]) * (2 * u(batch, 4, 1) - 1) / k[:, None]).sum(1)
    eq = (curve / curve.abs().amax(-1, keepdim=True).clamp_min(1e-6) * u(batch, 1) * aug.eq_db * math.log(10) / 10)[
        :, None
    ]
    keep = torch.ones(batch, frames, n_mels)
    for b in range(batch):
        for _ in range(aug.freq_masks):
            w = int(u(1) * (aug.freq_width + 1))
            s = int(u(1) * (n_mels - w + 1))
            keep[b, :, s : s + w] = 0
        for _ in range(aug.time_masks):
            w = int(u(1) * (aug.time_width + 1))
            s = int(u(1) * (frames - w + 1))
            keep[b, s : s + w] = 0
    return {"warp": warp, "eq": eq, "keep": keep}


def encode_augmented(
    encoder: LogMelEncoder, audio: torch.Tensor, u: torch.Tensor, aug: MelAugment | None
) -> torch.Tensor:
    """``encoder``'s features of a training batch ``audio: [B, S]`` under one :func:`draw_mel_augment` draw
    (none when ``aug`` is None), seeded from the batch's own uniforms ``u: [B]``, so a resumed run repeats
    every draw exactly."""
    if aug is None:
        return encoder(audio)
    g = torch.Generator().manual_seed(int(u.double().sum().item() * 2**40) % 2**62)
    return encoder(audio, draw_mel_augment(aug, audio.shape[0], audio.shape[1] // HOP, encoder.mel_filters.shape[1], g))


ENERGY_FLOOR = -2.0
"""Lowest relative frame energy of the posterior features (20 nats, about 87 dB, under the loudest frame)."""


def relative_frame_energy(mel: torch.Tensor) -> torch.Tensor:
    """Log-mel ``[B, n, M]`` (n a multiple of 4) → ``[B, n/4]``: each 40-ms frame's log mel power relative to
    the loudest frame of the input, in tens of nats, floored at :data:`ENERGY_FLOOR`. Relative, so the
    input's gain (and a flat equaliser) does not change it."""
    B, n, M = mel.shape
    e = torch.logsumexp(mel.reshape(B, n // MELS_PER_FRAME, MELS_PER_FRAME * M), dim=-1)
    return ((e - e.amax(dim=1, keepdim=True)) / 10.0).clamp_min(ENERGY_FLOOR)


class LogMelEncoder(nn.Module):
    """Log-mel → conv → small transformer → W feature frames (25 fps) per window.

    With ``cfg.audio_posteriors`` it owns a phone classifier (``phone_head``, stage 1b's) and returns
    each frame's phone posteriors and relative energy, ``[B, W, phones + 1]``, instead of its features.
    """

    def __init__(self, cfg: TalkConfig):
        super().__init__()
        self.context_samples = cfg.context_samples
        self.context_frames = cfg.audio_context_frames
        dim = cfg.audio_dim
        self.register_buffer("mel_filters", torch.from_numpy(mel_filterbank(cfg.n_mels)))
        self.register_buffer("stft_window", torch.hann_window(N_FFT))
        self.in_norm = nn.LayerNorm(MELS_PER_FRAME * cfg.n_mels)
        self.conv = nn.Conv1d(MELS_PER_FRAME * cfg.n_mels, dim, kernel_size=3, padding=1)
        frames = cfg.audio_context_frames + cfg.window
        self.pos_embed = nn.Parameter(torch.zeros(1, frames, dim))
        nn.init.trunc_normal_(self.pos_embed, std=math.sqrt(1 / dim / 3))
        heads = max(1, dim // 64)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=cfg.logmel_dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, cfg.logmel_layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(dim)
        self.phone_head = nn.Linear(dim, len(PHONE_SET)) if cfg.audio_posteriors else None

    @property
    def out_dim(self) -> int:
        return self.out_norm.normalized_shape[0] if self.phone_head is None else self.phone_head.out_features + 1

    def forward(self, audio: torch.Tensor, augment: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``audio: [B, (context + W)·640]`` → ``[B, W, audio_dim]`` (with a ``phone_head``: ``[B, W, phones + 1]``);
        ``augment`` (training only): a :func:`draw_mel_augment` draw."""
        if augment is None:
            mel = log_mel(audio, self.mel_filters, self.stft_window)
        else:
            aug = {k: v.to(audio.device) for k, v in augment.items()}
            mel = log_mel(audio, self.mel_filters, self.stft_window, aug["warp"]) + aug["eq"]
            floor = mel.amin(dim=(1, 2), keepdim=True)
            mel = torch.where(aug["keep"] > 0, mel, floor)
        B, n, M = mel.shape
        x = self.in_norm(mel.reshape(B, n // MELS_PER_FRAME, MELS_PER_FRAME * M))
        x = F.gelu(self.conv(x.transpose(1, 2)).transpose(1, 2))
        x = self.layers(x + self.pos_embed[:, : x.shape[1]])
        feat = self.out_norm(x[:, self.context_frames :])
        if self.phone_head is None:
            return feat
        posteriors = torch.softmax(self.phone_head(feat), dim=-1)
        energy = relative_frame_energy(mel)[:, self.context_frames :, None]
        return torch.cat([posteriors, energy], dim=-1)


def build_audio_encoder(cfg: TalkConfig) -> nn.Module:
    if cfg.audio_encoder == "wav2vec2":
        if cfg.audio_posteriors:
            raise ValueError(
                "audio_posteriors needs the log-mel front-end (it reads that front-end's phone classifier)"
            )
        if cfg.audio_context_frames != 0:
            raise ValueError("the wav2vec2 encoder encodes each window alone (audio_context_frames must be 0)")
        if cfg.audio_dim != cfg.wav2vec2_dim:
            raise ValueError(f"audio_dim ({cfg.audio_dim}) must equal wav2vec2_dim ({cfg.wav2vec2_dim})")
        return wav2vec2_class()(xlsr_300m_config(cfg.wav2vec2_layers, cfg.wav2vec2_dim, cfg.wav2vec2_conv_dim))
    if cfg.audio_encoder == "logmel":
        return LogMelEncoder(cfg)
    raise ValueError(f"unknown audio encoder {cfg.audio_encoder!r} (expected 'wav2vec2' or 'logmel')")


def pool_per_scale(feat: torch.Tensor, scales: tuple[int, ...]) -> torch.Tensor:
    """Area-pool feature frames ``[B, n, C]`` to each scale and concatenate → ``[B, sum(scales), C]``.

    Token j of scale k gets the mean of the frames it covers: the per-token
    audio condition of the AR transformer.
    """
    x = feat.transpose(1, 2)
    return torch.cat([F.adaptive_avg_pool1d(x, n) for n in scales], dim=2).transpose(1, 2)
