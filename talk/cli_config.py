"""``splattalk talk`` configuration (light: no torch import, so ``--help`` is instant)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tyro.conf import Positional


@dataclass(frozen=True)
class TalkCommand:
    """Speech → motion: write a motion .npz (25 fps) for an audio file."""

    audio: Positional[Path]
    """Speech file: wav, mp3, m4a/aac, ogg/opus or flac, any sample rate, mono or stereo."""
    out: Path = Path("motion.npz")
    """Output .npz: motion [T, D] float32, fps, head_model, expr_dim."""
    checkpoint: Path | None = None
    """Talk model: the official ARTalk_wav2vec.pt (FLAME 2020 space) or one of our .safetensors; default: the built-in model."""
    style: Path | None = None
    """Style clip: an .npz with motion [50, D], or an official ARTalk style .pt; default: the model's neutral style."""
    seed: int = 0
    """Random seed (only matters with --temperature above 0)."""
    cfg_scale: float | None = None
    """Style guidance scale (default: the model's, 1.1 for ARTalk); 1 = no guidance."""
    temperature: float = 0.0
    """0: greedy per-bit decoding as ARTalk; above 0: sample bits at this temperature."""
    expected_codes: bool | None = None
    """Decode expected codes instead of the chosen bits (fuller, more accurate lips); default: the model's (built-in: on; official: off, as ARTalk)."""
    audio_cfg_scale: float | None = None
    """Audio guidance scale (models trained with audio dropout); default: the model's; 1 = none (ARTalk)."""
    mouth_samples: int | None = None
    """Decodings of each window averaged for the mouth (steadier, more accurate lips; costs time); default: the model's; 1 = none (ARTalk)."""
    readout_weight: float | None = None
    """Share of the mouth read-out in the mouth (models that have one); default: the model's; 0 = the generator alone."""
    smooth: bool = True
    """Savitzky–Golay post-smoothing as ARTalk."""
    threads: int | None = None
    """CPU threads for torch (default: 1 for our small models, which gain nothing from more; torch's default for the official one)."""
