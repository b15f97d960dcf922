"""Configurations of the show-side commands (light: no heavy imports, so ``--help`` is instant)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tyro.conf import Positional


@dataclass(frozen=True)
class ExportCommand:
    """Render the avatar speaking into an mp4 (H.264 video + AAC audio)."""

    run: Positional[Path]
    """Run folder with a fitted avatar (RUN/avatar/avatar.safetensors), or an avatar .safetensors file."""
    audio: Path | None = None
    """Speech to speak (wav/mp3/m4a/ogg/flac); its motion comes from the talk model. Also muxed as the soundtrack."""
    motion: Path | None = None
    """Render this motion .npz (from `splattalk talk`) instead of running the talk model; --audio then only adds sound."""
    out: Path | None = None
    """Output mp4 (default: RUN/exports/<audio or motion name>.mp4)."""
    resolution: int = 512
    """Output height and width in pixels (square)."""
    fps: int = 25
    """Output frame rate; motion is resampled from the model's 25 fps."""
    camera: Literal["front", "orbit", "tracked"] = "front"
    """front: fixed frontal view; orbit: the camera swings ±35° around the head; tracked: the original video's camera and head placement."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background colour, RGB in [0, 1]."""
    checkpoint: Path | None = None
    """Talk model (official ARTalk_wav2vec.pt or ours); default: the built-in model."""
    style: Path | None = None
    """Style clip .npz (motion [50, D]) for the talk model."""
    expression_scale: float = 1.0
    """Multiplies the generated expression and jaw motion."""
    head_motion_scale: float = 1.0
    """Multiplies the generated head rotation."""
    backend: Literal["auto", "cpu", "gsplat"] = "auto"
    """Rasterizer: gsplat on CUDA when available, else our CPU backend."""
    seed: int = 0
    """Talk-model seed."""
    drive: Path | None = None
    """Reenactment: a video (tracked first) or a run folder from `splattalk track` whose expressions, jaw, eyes and head motion drive the avatar; its sound is muxed (--audio replaces it)."""
    drive_cache: Path | None = None
    """Run folder a --drive video is tracked into (reused next time); default: drive-<video name> next to the output."""
    drive_mouth_gain: float = 1.0
    """Reenactment: multiplies the driver's jaw and mouth expressions only (an avatar whose lips hide small openings needs ~2)."""


@dataclass(frozen=True)
class DemoCommand:
    """The whole pipeline on the embedded sample: track → fit → talk → export mp4 → live viewer."""

    out: Path = Path("demo")
    """Run folder for the demo (reused: finished stages are skipped)."""
    speech: Path | None = None
    """Speech for the talking part (default: the embedded sample clip)."""
    view: bool = True
    """Open the live viewer at the end (--no-view stops after the mp4)."""
    fit_iterations: int | None = None
    """Avatar-fit iterations (default: `splattalk fit`'s); fewer gives a quicker, blurrier preview."""
    host: str = "127.0.0.1"
    """Viewer address (loopback by default)."""
    port: int = 8080
    """Viewer port."""


DEFAULT_PORT = 8080


@dataclass(frozen=True)
class ViewCommand:
    """Live viewer: a viser server where the avatar talks, with sound, in any browser."""

    run: Positional[Path | None] = None
    """Run folder with avatar/avatar.safetensors (and tracking/tracks.npz); default: the embedded default avatar."""
    host: str = "127.0.0.1"
    """Interface to bind; 0.0.0.0 exposes the viewer to the network (anyone who can reach it can upload audio)."""
    port: int = DEFAULT_PORT
    """TCP port of the web page."""
    checkpoint: Path | None = None
    """Talk model: one of our .safetensors or the official ARTalk_wav2vec.pt; default: the built-in model."""
    loudness_only: bool = False
    """Skip the talk model: the jaw only follows the speech's loudness (also the fallback when no model is installed)."""
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
    """Send the head pose as a node transform and only the Gaussian groups that moved (--no-light-stream: every Gaussian every frame)."""
    stream_tolerance_mm: float = 0.1
    """Largest error the light stream leaves in a Gaussian's centre or extent, in millimetres (~0.2 px at the default zoom)."""
    drive: Path | None = None
    """Reenactment: play the avatar driven by this video (tracked first) or `splattalk track` run folder, with its sound."""
    drive_cache: Path | None = None
    """Run folder a --drive video is tracked into (reused next time); default: drive-<video name> next to the video."""
    drive_mouth_gain: float = 1.0
    """Reenactment: multiplies the driver's jaw and mouth expressions only."""
