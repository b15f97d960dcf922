"""The CLI's commands as frozen dataclasses; their field docstrings are the ``--help`` text (tyro).

A stage's own settings stay in its package (``tracking.config.TrackConfig``,
``avatar.fit_config.FitConfig``, ``viewer.config.ViewConfig``); a command here adds
what the command line gives (input files, the run folder). Light: nothing heavy is
imported, so ``splattalk --help`` is instant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tyro.conf import Positional

from splattalk.avatar.fit_config import FitConfig
from splattalk.tracking.config import TrackConfig
from splattalk.viewer.config import DEFAULT_PORT


def _stage_config(cmd, config_type):
    """The stage's own config out of a command that extends it."""
    return config_type(**{f.name: getattr(cmd, f.name) for f in dataclasses.fields(config_type)})


@dataclass(frozen=True, kw_only=True)
class TrackCommand(TrackConfig):
    """Fit the head model and a camera to every frame of a video (or a folder of images, or one image)."""

    video: Positional[Path]
    """Input video file, folder of images, or a single image."""
    run: Path
    """Run folder to write (frames/, masks/, tracking/); rerunning resumes finished sub-stages."""

    def config(self) -> TrackConfig:
        return _stage_config(self, TrackConfig)


@dataclass(frozen=True, kw_only=True)
class FitCommand(FitConfig):
    """Fit the Gaussian head avatar to a tracked run folder (after `splattalk track`); rerun to resume."""

    run: Positional[Path]
    """Run folder written by `splattalk track` (frames/, masks/, tracking/tracks.npz)."""
    restart: bool = False
    """Ignore an existing checkpoint and start over."""
    quiet: bool = False
    """No progress bar."""

    def config(self) -> FitConfig:
        return _stage_config(self, FitConfig)


@dataclass(frozen=True)
class ExportCommand:
    """Render the avatar speaking into an mp4 (H.264 video + AAC audio)."""

    run: Positional[Path]
    """Run folder with a fitted avatar (RUN/avatar/avatar.safetensors), or an avatar .safetensors file."""
    audio: Path | None = None
    """Speech to speak (wav/mp3/m4a/ogg/flac); its motion comes from the talk model. Also muxed as the soundtrack."""
    motion: Path | None = None
    """Render this motion .npz (from `splattalk talk`) instead of running the talk model;
    --audio then only adds sound."""
    out: Path | None = None
    """Output mp4 (default: RUN/exports/<audio or motion name>.mp4)."""
    resolution: int = 512
    """Output height and width in pixels (square)."""
    fps: int = 25
    """Output frame rate; motion is resampled from the model's 25 fps."""
    camera: Literal["front", "orbit", "tracked"] = "front"
    """front: fixed frontal view; orbit: the camera swings ±35° around the head;
    tracked: the original video's camera and head placement."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background colour, RGB in [0, 1]."""
    checkpoint: Path | None = None
    """Talk model (official ARTalk_wav2vec.pt or ours); default: the built-in model."""
    style: Path | None = None
    """Style clip .npz (motion [50, D]) for the talk model; default: the run's own tracked motion (see --run-style)."""
    run_style: bool = True
    """Take the talk model's style from the run's tracked motion, "talks like you" (--no-run-style: the model's
    neutral style)."""
    expression_scale: float = 1.0
    """Multiplies the generated expression and jaw motion."""
    head_motion_scale: float = 1.0
    """Multiplies the generated head rotation."""
    backend: Literal["auto", "cpu", "gsplat"] = "auto"
    """Rasterizer: gsplat on CUDA when available, else our CPU backend."""
    seed: int = 0
    """Talk-model seed."""

    drive: Path | None = None
    """Reenactment: a video (tracked first) or a run folder from `splattalk track`
    whose expressions, jaw, eyes and head motion drive the avatar; its sound is muxed (--audio replaces it)."""
    drive_cache: Path | None = None
    """Run folder a --drive video is tracked into (reused next time); default: drive-<video name> next to the output."""
    drive_mouth_gain: float = 1.0
    """Reenactment: multiplies the driver's jaw and mouth expressions only
    (an avatar whose lips hide small openings needs ~2)."""


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
    """Avatar-fit iterations (default: `splattalk fit`'s); fewer gives a quicker, blurrier preview. The demo fits
    the synthetic sample at 256² with its whole matte (``splattalk.demo.DEMO_FIT``) to stay within minutes."""
    host: str = "127.0.0.1"
    """Viewer address (loopback by default)."""
    port: int = DEFAULT_PORT
    """Viewer port."""


@dataclass(frozen=True)
class DoctorCommand:
    """Report which head models, checkpoints, backends and media tools were found."""

    check_files: bool = True
    """Open the user-supplied files and validate them (slower; off: only look for them)."""


@dataclass(frozen=True)
class TalkCommand:
    """Speech → motion: write a motion .npz (25 fps) for an audio file."""

    audio: Positional[Path]
    """Speech file: wav, mp3, m4a/aac, ogg/opus or flac, any sample rate, mono or stereo."""
    out: Path = Path("motion.npz")
    """Output .npz: motion [T, D] float32, fps, head_model, expr_dim."""
    checkpoint: Path | None = None
    """Talk model: the official ARTalk_wav2vec.pt (FLAME 2020 space) or one of our .safetensors;
    default: the built-in model."""
    style: Path | None = None
    """Style clip: an .npz with motion [50, D], or an official ARTalk style .pt; default: with --run, the run's own
    tracked motion, else the model's neutral style."""
    run: Path | None = None
    """A tracked run folder (`splattalk track`): speak like its person, in the style of its tracked motion and with
    the mouth `splattalk adapt` fitted to it (when it was run)."""
    run_style: bool = True
    """With --run, take the style from the run's tracked motion (--no-run-style: the model's neutral style)."""
    seed: int = 0
    """Random seed (only matters with --temperature above 0)."""
    cfg_scale: float | None = None
    """Style guidance scale (default: the model's, 1.1 for ARTalk); 1 = no guidance."""
    temperature: float = 0.0
    """0: greedy per-bit decoding as ARTalk; above 0: sample bits at this temperature."""
    expected_codes: bool | None = None
    """Decode expected codes instead of the chosen bits (fuller, more accurate lips);
    default: the model's (built-in: on; official: off, as ARTalk)."""
    audio_cfg_scale: float | None = None
    """Audio guidance scale (models trained with audio dropout); default: the model's; 1 = none (ARTalk)."""
    mouth_samples: int | None = None
    """Decodings of each window averaged for the mouth (steadier, more accurate lips; costs time);
    default: the model's; 1 = none (ARTalk)."""
    readout_weight: float | None = None
    """Share of the mouth read-out in the mouth (models that have one); default: the model's;
    0 = the generator alone."""
    pause_closure: bool | None = None
    """Rest the lips together in the audio's pauses; default: the model's (built-in: on; official: off, as ARTalk)."""
    smooth: bool = True
    """Savitzky–Golay post-smoothing as ARTalk."""
    threads: int | None = None
    """CPU threads for torch (default: 1 for our small models, which gain nothing from more;
    torch's default for the official one)."""


@dataclass(frozen=True)
class AdaptCommand:
    """Fit the talk model's mouth to the person of a tracked run (from the speech in the run's video)."""

    run: Positional[Path]
    """Run folder tracked with `splattalk track` (RUN/tracking/tracks.npz)."""
    audio: Path | None = None
    """The speech of the tracked video (default: the video the run was tracked from,
    as RUN/tracking/config.json names it)."""
    checkpoint: Path | None = None
    """Talk model to adapt (default: the built-in model)."""
    holdout: float = 0.3
    """Share of the video at its end kept out of training and used to score before/after (0: learn from all)."""
    epochs: int = 20
    """Passes over the person's frames."""
    lr: float = 3e-4
    """AdamW learning rate."""
    seed: int = 0
    """Seed of the frame order and the dropout."""
    force: bool = False
    """Adapt again even if RUN/talk/readout_adapted.safetensors exists."""
