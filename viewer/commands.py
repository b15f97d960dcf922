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


@dataclass(frozen=True)
class DemoCommand:
    """The whole pipeline on the embedded sample: track → fit → talk → export mp4 → live viewer."""

    out: Path = Path("demo")
    """Run folder for the demo (reused: finished stages are skipped)."""
    speech: Path | None = None
    """Speech for the talking part (default: the embedded sample clip)."""
    view: bool = True
    """Open the live viewer at the end (--no-view stops after the mp4)."""
    host: str = "127.0.0.1"
    """Viewer address (loopback by default)."""
    port: int = 8080
    """Viewer port."""
