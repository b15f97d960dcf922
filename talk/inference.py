"""Speech → motion, one window after another (the code path shared by files and streams).

The audio is cut into windows of W frames (W·640 samples; the last one padded
with zeros). For each window: encode its audio (plus the fixed left context),
generate its bits scale by scale with the previous window's tokens as prefix,
decode them together with the previous window's bits, and re-encode the new
motion on its own to become the next prefix. Then Savitzky–Golay smoothing,
and the jaw's side-to-side/twist components are zeroed (``jaw_open_only``).

:func:`generate` runs that on a whole utterance; ``stream.TalkStream`` runs the
very same :func:`step_window` as audio arrives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from splattalk.talk.config import SAMPLES_PER_FRAME, TalkConfig
from splattalk.talk.generator import TalkModel
from splattalk.talk.pauses import window_gate
from splattalk.talk.smoothing import smooth_motion


@dataclass
class Session:
    """What carries from one window to the next (for one utterance or stream)."""

    style: torch.Tensor
    """[1, 1, ar_dim] style token (already guided)."""
    prev_bits: torch.Tensor
    """[1, L, C] bits of the previous window's motion, encoded alone."""
    prefix_tokens: torch.Tensor
    """[1, L·prev_windows, ar_dim] tokens of the previous windows, oldest first."""
    generator: torch.Generator
    """Random source for bit sampling (unused when greedy)."""
    temperature: float = 0.0
    use_cache: bool = True
    expected_codes: bool = False
    """Decode expected codes rather than the chosen bits (``TalkConfig.expected_codes``)."""
    audio_cfg_scale: float = 1.0
    """Audio guidance of the bit logits (``TalkConfig.audio_cfg_scale``; 1 = none)."""
    mouth_samples: int = 1
    """Decodings averaged for the mouth (``TalkConfig.mouth_samples``; 1 = none)."""
    readout_weight: float = 0.0
    """Share of the mouth read-out in the mouth (``TalkConfig.readout_weight``; 0 = generator only)."""
    pause_closure: bool = False
    """Gate the mouth to rest in the audio's pauses (``TalkConfig.pause_closure``)."""
    speech_level_db: float = -math.inf
    """Loudest speech level (dB) of the windows so far, for the pause gate."""


def _device(model: TalkModel) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def start_session(
    model: TalkModel,
    style: np.ndarray | torch.Tensor | None = None,
    seed: int = 0,
    cfg_scale: float | None = None,
    temperature: float = 0.0,
    use_cache: bool = True,
    expected_codes: bool | None = None,
    audio_cfg_scale: float | None = None,
    *,
    mouth_samples: int | None = None,
    readout_weight: float | None = None,
    pause_closure: bool | None = None,
) -> Session:
    """State before the first window: the prefix is the encoding of a still (all-zero) motion window.

    ``expected_codes`` / ``audio_cfg_scale`` / ``mouth_samples`` / ``readout_weight`` / ``pause_closure`` None
    take the model's config."""
    cfg, dev = model.cfg, _device(model)
    clip = None
    if style is not None:
        clip = torch.as_tensor(np.asarray(style, np.float32), device=dev)[None]
        if clip.shape[1:] != (cfg.style_frames, cfg.motion_dim):
            raise ValueError(f"style clip must be [{cfg.style_frames}, {cfg.motion_dim}], got {list(clip.shape[1:])}")
    style_token = model.style_condition(clip, cfg_scale)
    still = torch.zeros(1, cfg.window, cfg.motion_dim, device=dev)
    prev_bits, _ = model.basic_vae.encode(still)
    tokens = model.window_tokens(prev_bits, style_token).repeat(1, cfg.prev_windows, 1)
    generator = torch.Generator(device=dev).manual_seed(int(seed))
    expected = cfg.expected_codes if expected_codes is None else bool(expected_codes)
    audio_scale = cfg.audio_cfg_scale if audio_cfg_scale is None else float(audio_cfg_scale)
    samples = cfg.mouth_samples if mouth_samples is None else int(mouth_samples)
    if samples < 1:
        raise ValueError(f"mouth_samples must be at least 1, got {samples}")
    closing = cfg.pause_closure if pause_closure is None else bool(pause_closure)
    if closing and (
        not all(0 <= c < cfg.motion_dim for c in cfg.closure_channels)
        or len(cfg.closure_rest) != len(cfg.closure_channels)
    ):
        raise ValueError(
            f"closure_channels {cfg.closure_channels} must lie in the {cfg.motion_dim} motion columns, with one "
            f"closure_rest each (got {cfg.closure_rest})"
        )
    readout = cfg.readout_weight if readout_weight is None else float(readout_weight)
    if not 0.0 <= readout <= 1.0 or (readout > 0 and model.readout is None):
        raise ValueError(f"readout_weight must be in [0, 1] and needs a model with a mouth read-out, got {readout}")
    return Session(
        style_token,
        prev_bits,
        tokens,
        generator,
        float(temperature),
        use_cache,
        expected,
        audio_scale,
        samples,
        readout,
        closing,
    )


@torch.inference_mode()
def step_window(model: TalkModel, session: Session, audio: torch.Tensor) -> torch.Tensor:
    """Raw motion ``[W, D]`` of one window from ``audio: [context + W·640]`` samples; advances ``session``."""
    feat = model.audio_encoder(audio[None].to(_device(model)))
    cond = model.condition_from_features(feat)
    s, K = session, session.mouth_samples
    prefix, style, prev_bits, temperature = s.prefix_tokens, s.style, s.prev_bits, s.temperature
    if K > 1:  # the mouth ensemble: the usual decoding first, then K − 1 draws, in one batch
        cond, prefix, style, prev_bits = (x.expand(K, *x.shape[1:]) for x in (cond, prefix, style, prev_bits))
        temperature = torch.tensor([s.temperature] + [model.cfg.mouth_sample_temperature] * (K - 1))
    bits, probs = model.sample_bits(
        cond, prefix, style, s.use_cache, temperature, s.generator, return_probs=True, audio_scale=s.audio_cfg_scale
    )
    _, motion = model.basic_vae.decode(prev_bits, bits)
    channels = list(model.cfg.expected_channels) or slice(None)
    if s.expected_codes:
        # bits_to_feature maps a bit b to the code (2b − 1)/√C, so a probability p gives the expected code.
        _, expected = model.basic_vae.decode(prev_bits, probs)
        motion[..., channels] = expected[..., channels]
    if K > 1:
        motion[:1, :, channels] = motion[..., channels].mean(0, keepdim=True)
        motion = motion[:1]
    if s.readout_weight > 0:  # blended before re-encoding: the next window continues from the mouth shown
        ch, w = model.readout.channels, s.readout_weight
        motion[..., ch] = (1.0 - w) * motion[..., ch] + w * model.readout(feat)
    session.prev_bits, _ = model.basic_vae.encode(motion)
    tokens = model.window_tokens(session.prev_bits, session.style)
    session.prefix_tokens = torch.cat([session.prefix_tokens[:, tokens.shape[1] :], tokens], dim=1)
    if s.pause_closure:  # on what is shown only: the next window still continues from the generator's mouth
        # Gated towards each channel's rest: rest + gate·(motion − rest), the gate 0 deep in a pause.
        motion = motion.clone()
        gate, s.speech_level_db = window_gate(
            audio.cpu().numpy(), motion.shape[1], model.cfg.context_samples, s.speech_level_db
        )
        cols, rest = list(model.cfg.closure_channels), torch.tensor(model.cfg.closure_rest).to(motion)
        g = torch.from_numpy(gate).to(motion)[:, None]
        motion[0, :, cols] = rest + g * (motion[0, :, cols] - rest)
    return motion[0]


def finalize(motion: np.ndarray, cfg: TalkConfig, smooth: bool = True) -> np.ndarray:
    """Post-process raw motion ``[T, D]``: smoothing, then ``jaw_open_only``."""
    out = smooth_motion(motion, cfg) if smooth else np.asarray(motion, np.float32).copy()
    return zero_jaw_twist(out, cfg)


def zero_jaw_twist(motion: np.ndarray, cfg: TalkConfig) -> np.ndarray:
    if cfg.jaw_open_only:
        motion[:, cfg.expr_dim + 4 :] = 0.0
    return motion


def pad_for_windows(audio: np.ndarray, n_windows: int, cfg: TalkConfig) -> np.ndarray:
    """``audio`` after the first window's left context of zeros, cut or zero-padded to ``n_windows`` windows:
    window w reads samples ``[w·W·640, w·W·640 + context + W·640)`` of the result."""
    padded = np.zeros(cfg.context_samples + n_windows * cfg.window_samples, np.float32)
    audio = np.asarray(audio, np.float32).reshape(-1)[: n_windows * cfg.window_samples]
    padded[cfg.context_samples : cfg.context_samples + audio.shape[0]] = audio
    return padded


def frames_for(samples: int) -> int:
    """Motion frames covering ``samples`` audio samples (the last frame may be partial)."""
    return math.ceil(samples / SAMPLES_PER_FRAME)


@torch.inference_mode()
def generate(
    model: TalkModel,
    audio: np.ndarray,
    style: np.ndarray | None = None,
    seed: int = 0,
    cfg_scale: float | None = None,
    temperature: float = 0.0,
    smooth: bool = True,
    use_cache: bool = True,
    progress: bool = False,
    expected_codes: bool | None = None,
    audio_cfg_scale: float | None = None,
    *,
    mouth_samples: int | None = None,
    readout_weight: float | None = None,
    pause_closure: bool | None = None,
) -> np.ndarray:
    """Motion ``[T, D]`` float32 at 25 fps for ``audio: [S]`` float32 16 kHz mono; T = ⌈S / 640⌉.

    ``style``: a clip ``[style_frames, D]`` or None (the model's neutral style).
    ``temperature`` 0 is ARTalk's greedy decoding (``seed`` then does not matter).
    ``expected_codes`` / ``audio_cfg_scale`` / ``mouth_samples`` / ``readout_weight`` / ``pause_closure`` None:
    the model's config.
    """
    cfg = model.cfg
    audio = np.asarray(audio, np.float32).reshape(-1)
    T = frames_for(audio.shape[0])
    if T == 0:
        return np.zeros((0, cfg.motion_dim), np.float32)
    n_windows = math.ceil(T / cfg.window)
    padded_t = torch.from_numpy(pad_for_windows(audio, n_windows, cfg))
    session = start_session(
        model,
        style,
        seed,
        cfg_scale,
        temperature,
        use_cache,
        expected_codes,
        audio_cfg_scale,
        mouth_samples=mouth_samples,
        readout_weight=readout_weight,
        pause_closure=pause_closure,
    )
    windows = range(n_windows)
    if progress and n_windows > 1:
        windows = tqdm(windows, desc=f"talk ({cfg.window / 25:g} s windows)", unit="window")
    raw = []
    for w in windows:
        start = w * cfg.window_samples
        raw.append(
            step_window(model, session, padded_t[start : start + cfg.context_samples + cfg.window_samples])
            .cpu()
            .numpy()
        )
    return finalize(np.concatenate(raw)[:T], cfg, smooth)
