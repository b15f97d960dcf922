"""The run folder: where every stage reads and writes (:class:`RunLayout`), and ``tracks.npz`` (:class:`Tracks`).

One run folder per subject::

    RUN/
      frames/000000.jpg …          cropped RGB frames (tracking)
      masks/000000.png …           foreground alpha (tracking)
      tracking/tracks.npz          head-model parameters + camera per frame (:class:`Tracks`)
      tracking/transforms.json     cameras in the VHAP / nerfstudio convention
      tracking/flame_param/*.npz   per-frame parameters with VHAP's key names
      avatar/avatar.safetensors    the fitted Gaussian avatar (avatar.fit)
      talk/                        motions made for this avatar
      exports/*.mp4                rendered videos

This module is a leaf (numpy and splattalk's atomic writes and errors only), so
``tracking`` and ``avatar`` can use it without depending on the application.
"""

from __future__ import annotations

import dataclasses
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from splattalk.atomic import save_npz
from splattalk.errors import SplattalkError

TRACKS_FORMAT = 2
"""Version of ``tracks.npz`` this code writes. Version 1 (files without ``format_version``) had the same arrays."""

PER_FRAME = ("expr", "jaw", "neck", "rot", "transl", "eyes")
"""Per-frame parameter arrays of ``tracks.npz``, in the order of :class:`~splattalk.head.params.HeadParams`."""

_PER_FRAME_WIDTH = {"jaw": 3, "neck": 3, "rot": 3, "transl": 3, "eyes": 6}
_STRINGS = ("head_model", "key")


def frame_name(index: int) -> str:
    """File stem of frame ``index`` in frames/, masks/ and tracking/flame_param/."""
    return f"{index:06d}"


@dataclass(frozen=True)
class RunLayout:
    """Every path of a run folder. ``RunLayout(run).tracks`` is ``run/tracking/tracks.npz``, and so on."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of_avatar(cls, path: str | Path) -> RunLayout:
        """The run of a command argument that is a run folder or its ``avatar/avatar.safetensors``."""
        path = Path(path)
        return cls(path.parent.parent if path.suffix == ".safetensors" else path)

    # -- tracking ---------------------------------------------------------------------------------
    @property
    def frames_dir(self) -> Path:
        return self.root / "frames"

    @property
    def masks_dir(self) -> Path:
        return self.root / "masks"

    def frame(self, index: int) -> Path:
        return self.frames_dir / f"{frame_name(index)}.jpg"

    def mask(self, index: int) -> Path:
        return self.masks_dir / f"{frame_name(index)}.png"

    @property
    def tracking_dir(self) -> Path:
        return self.root / "tracking"

    @property
    def tracks(self) -> Path:
        return self.tracking_dir / "tracks.npz"

    @property
    def landmarks(self) -> Path:
        """Detected 2D landmarks in source pixels (the tracker's first, resumable sub-stage)."""
        return self.tracking_dir / "landmarks.npz"

    @property
    def frames_manifest(self) -> Path:
        """Written after frames/ and masks/ are complete (their key and count)."""
        return self.tracking_dir / "frames.json"

    @property
    def transforms(self) -> Path:
        return self.tracking_dir / "transforms.json"

    @property
    def frame_params_dir(self) -> Path:
        """VHAP-style per-frame parameter files (``flame_param/000000.npz`` …)."""
        return self.tracking_dir / "flame_param"

    @property
    def canonical_params(self) -> Path:
        return self.tracking_dir / "canonical_flame_param.npz"

    @property
    def overlay(self) -> Path:
        return self.tracking_dir / "overlay.mp4"

    @property
    def tracking_config(self) -> Path:
        return self.tracking_dir / "config.json"

    # -- avatar, talk, exports --------------------------------------------------------------------
    @property
    def avatar_dir(self) -> Path:
        return self.root / "avatar"

    @property
    def avatar(self) -> Path:
        return self.avatar_dir / "avatar.safetensors"

    @property
    def avatar_metrics(self) -> Path:
        return self.avatar_dir / "metrics.json"

    @property
    def talk_dir(self) -> Path:
        return self.root / "talk"

    def motion(self, name: str) -> Path:
        return self.talk_dir / f"{name}.npz"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    def export(self, name: str) -> Path:
        return self.exports_dir / f"{name}.mp4"


def avatar_path(run: Path) -> Path:
    """A command's RUN argument (a run folder, or an avatar .safetensors file) → the avatar file."""
    run = Path(run)
    return run if run.suffix == ".safetensors" else RunLayout(run).avatar


def tracks_path(run: Path) -> Path | None:
    """The tracks of a command's RUN argument (see :func:`avatar_path`), or None when it was not tracked."""
    path = RunLayout.of_avatar(run).tracks
    return path if path.is_file() else None


@dataclass(frozen=True)
class Tracks:
    """``tracking/tracks.npz``: T frames of head-model parameters and the one fixed camera that saw them.

    Arrays are kept as stored (the tracker writes float32). Optional fields are what the
    tracker adds for diagnostics and resuming; files made by other tools may lack them.
    """

    expr: np.ndarray
    """[T, E] expression coefficients"""
    jaw: np.ndarray
    """[T, 3] axis-angle"""
    neck: np.ndarray
    """[T, 3] axis-angle"""
    rot: np.ndarray
    """[T, 3] axis-angle global rotation"""
    transl: np.ndarray
    """[T, 3] translation, metres"""
    eyes: np.ndarray
    """[T, 6] left then right eye, axis-angle"""
    shape: np.ndarray
    """[S] identity coefficients"""
    K: np.ndarray
    """[3, 3] intrinsics of the frames in frames/ (OpenCV, pixel centres at +0.5)"""
    viewmat: np.ndarray
    """[4, 4] world→camera (OpenCV), fixed over the clip"""
    width: int
    height: int
    head_model: str
    """Head model id (``default``, ``flame2020``, ``flame2023``)."""
    fps: float = 25.0
    static_offset: np.ndarray | None = None
    """[V, 3] per-vertex rest-pose offsets (identity detail beyond the shape space)"""
    valid: np.ndarray | None = None
    """[T] bool: a face was detected (else the parameters are interpolated)"""
    interpolated: np.ndarray | None = None
    """[T] bool: not valid"""
    residual_px: np.ndarray | None = None
    """[T] mean landmark reprojection error in pixels (nan without a detection)"""
    landmarks2d: np.ndarray | None = None
    """[T, 478, 2] detected landmarks in frame pixels (nan without a detection)"""
    crop: np.ndarray | None = None
    """[3] the square crop of the source: x0, y0, side (source pixels)"""
    source_size: np.ndarray | None = None
    """[2] source width, height"""
    source_rotation: int | None = None
    """Display rotation applied to the source, degrees"""
    key: str | None = None
    """Hash of the tracker inputs and settings that made this file (for resuming)."""
    extra: dict = field(default_factory=dict)
    """Arrays this version does not know (kept, and written back, unchanged)."""

    def __len__(self) -> int:
        return int(self.expr.shape[0])

    def per_frame(self) -> dict[str, np.ndarray]:
        """The per-frame arrays by name (``HeadParams(**tracks.per_frame())``)."""
        return {k: getattr(self, k) for k in PER_FRAME}

    @property
    def camera(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(viewmat [4, 4], K [3, 3], width, height)."""
        return self.viewmat, self.K, self.width, self.height

    def replace(self, **changes) -> Tracks:
        return dataclasses.replace(self, **changes)

    def validate(self, where: str = "tracks") -> Tracks:
        """Raise :class:`SplattalkError` naming ``where`` when arrays disagree in shape; returns self."""
        problems = []
        num = self.expr.shape[0] if self.expr.ndim == 2 else None
        if num is None:
            problems.append(f"expr has shape {self.expr.shape}, expected [T, E]")
        for name, width in _PER_FRAME_WIDTH.items():
            value = getattr(self, name)
            if value.ndim != 2 or value.shape[1] != width or (num is not None and value.shape[0] != num):
                problems.append(
                    f"{name} has shape {value.shape}, expected [{num if num is not None else 'T'}, {width}]"
                )
        if self.shape.ndim != 1:
            problems.append(f"shape has shape {self.shape.shape}, expected [S]")
        if self.K.shape != (3, 3):
            problems.append(f"K has shape {self.K.shape}, expected [3, 3]")
        if self.viewmat.shape != (4, 4):
            problems.append(f"viewmat has shape {self.viewmat.shape}, expected [4, 4]")
        if self.width <= 0 or self.height <= 0:
            problems.append(f"the frame size {self.width}x{self.height} is not positive")
        for name in ("valid", "interpolated", "residual_px"):
            value = getattr(self, name)
            if value is not None and num is not None and value.shape != (num,):
                problems.append(f"{name} has shape {value.shape}, expected [{num}]")
        if problems:
            raise SplattalkError(
                f"{where} is not valid tracking output: {'; '.join(problems)}. "
                f"Rerun `splattalk track` to regenerate it."
            )
        return self

    # -- files ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Tracks:
        """Read and validate ``path``; a missing, corrupt or incomplete file raises :class:`SplattalkError`."""
        path = Path(path)
        if not path.is_file():
            raise SplattalkError(f"no tracks at {path}: run `splattalk track VIDEO --run {_run_of(path)}` first")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise SplattalkError(
                f"cannot read {path} ({err.__class__.__name__}: {err}); it is not a complete .npz. "
                f"Rerun `splattalk track` to regenerate it."
            ) from None
        return cls.from_arrays(arrays, str(path))

    @classmethod
    def from_arrays(cls, arrays: dict, where: str = "tracks") -> Tracks:
        arrays = dict(arrays)
        version = int(arrays.pop("format_version", 1))
        if version > TRACKS_FORMAT:
            raise SplattalkError(
                f"{where} has tracks format {version}, newer than this splattalk reads "
                f"({TRACKS_FORMAT}); update splattalk or rerun `splattalk track`"
            )
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [k for k in required if k not in arrays]
        if missing:
            raise SplattalkError(
                f"{where} lacks {', '.join(missing)} (has {', '.join(sorted(arrays)) or 'nothing'}); "
                f"it is not a tracks.npz of `splattalk track`, or an older tracker wrote it: "
                f"rerun `splattalk track`"
            )
        values = {}
        for name in names & arrays.keys():
            value = arrays.pop(name)
            if name in _STRINGS:
                value = str(value)
            elif name in ("width", "height", "source_rotation"):
                value = int(value)
            elif name == "fps":
                value = float(value)
            values[name] = value
        return cls(**values, extra=arrays).validate(where)

    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"format_version": np.int32(TRACKS_FORMAT)}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or value is None:
                continue
            if f.name in _STRINGS:
                value = np.str_(value)
            elif f.name in ("width", "height", "source_rotation"):
                value = np.int32(value)
            elif f.name == "fps":
                value = np.float32(value)
            out[f.name] = value
        out.update(self.extra)
        return out

    def save(self, path: str | Path) -> None:
        """Validate, then write ``path`` atomically (with ``format_version``)."""
        self.validate(str(path))
        save_npz(path, **self.to_arrays())


def _run_of(tracks_path: Path) -> Path:
    return tracks_path.parent.parent if tracks_path.parent.name == "tracking" else tracks_path.parent
