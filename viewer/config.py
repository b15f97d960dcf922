"""Settings of the live viewer (light: no viser/torch at import, so ``splattalk --help`` is instant)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tyro.conf import Positional

DEFAULT_PORT = 8080


@dataclass(frozen=True)
class ViewConfig:
    """Live viewer: a viser server where the avatar talks, with sound, in any browser."""

    run: Positional[Path | None] = None
    """Run folder with avatar/avatar.safetensors (and tracking/tracks.npz); default: the embedded default avatar."""
    host: str = "127.0.0.1"
    """Interface to bind; 0.0.0.0 exposes the viewer to the network (anyone who can reach it can upload audio)."""
    port: int = DEFAULT_PORT
    """TCP port of the web page."""
    checkpoint: Path | None = None
    """Talk model: one of our .safetensors or the official ARTalk_wav2vec.pt; default: the built-in model."""
    run_style: bool = True
    """With a run, the first speaking style offered is the run's own tracked motion ("talks like you");
    --no-run-style: the model's neutral style first."""
    loudness_only: bool = False
    """Skip the talk model: the jaw only follows the speech's loudness
    (also the fallback when no model is installed)."""
    max_upload_mb: float = 50.0
    """Uploads larger than this are refused before any byte is kept."""
    max_audio_minutes: float = 15.0
    """Longest speech accepted (uploads, samples and text)."""
    max_text_chars: int = 600
    """Longest text the text-to-speech box accepts."""
    scene_scale: float = 10.0
    """Scene units per metre. viser sends covariances as float16; a metre-scale head's (~1e-6 m²) would underflow."""
    latency_ms: float = 30.0
    """How far ahead of the browser's audio clock frames are sent (network + render delay)."""
    export_resolution: int = 512
    """Side of the square video the "export mp4" button renders."""
    max_export_seconds: float = 120.0
    """Longest clip the "export mp4" button renders (the CPU renders ~10 frames/s; use `splattalk export` beyond)."""
    threads: int | None = None
    """CPU threads for torch (default: 1 for our small talk models, torch's default for the official one)."""
    light_stream: bool = True
    """Send the head pose as a node transform and only the Gaussian groups that moved
    (--no-light-stream: every Gaussian every frame)."""
    stream_tolerance_mm: float = 0.1
    """Largest error the light stream leaves in a Gaussian's centre or extent, in millimetres
    (~0.2 px at the default zoom)."""
    drive: Path | None = None
    """Reenactment: play the avatar driven by this video (tracked first) or `splattalk track` run folder,
    with its sound."""
    drive_cache: Path | None = None
    """Run folder a --drive video is tracked into (reused next time); default: drive-<video name> next to the video."""
    drive_mouth_gain: float = 1.0
    """Reenactment: multiplies the driver's jaw and mouth expressions only."""
