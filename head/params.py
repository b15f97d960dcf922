"""Per-frame head-model parameters: the arrays tracks, motions and avatars exchange."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from splattalk.errors import SplattalkError

MOTION_FPS = 25
"""Every motion array in splattalk runs at 25 frames per second."""


def resample_motion(motion: np.ndarray, src_fps: float, dst_fps: float = MOTION_FPS) -> np.ndarray:
    """Linear resampling of a motion [T, D] from ``src_fps`` to ``dst_fps`` → [round(T · dst/src), D] float32.

    Frame i stands for the time (i + 0.5) / fps (the middle of its interval) on both sides, so a
    clip keeps its timing whichever way it is resampled; the ends are held.
    """
    motion = np.asarray(motion)
    if src_fps == dst_fps:
        return motion.astype(np.float32, copy=False)
    n = len(motion)
    src = (np.arange(n) + 0.5) / src_fps
    dst = (np.arange(int(round(n * dst_fps / src_fps))) + 0.5) / dst_fps
    return np.stack([np.interp(dst, src, motion[:, d]) for d in range(motion.shape[1])], 1).astype(np.float32)


def scale_motion(motion: np.ndarray, expr_dim: int, expression: float = 1.0, head: float = 1.0) -> np.ndarray:
    """A copy of a motion [T, E+6] (expression, head rotation, jaw) with expression and jaw scaled by
    ``expression`` and the head rotation by ``head``."""
    out = np.array(motion, copy=True)
    out[:, :expr_dim] *= expression
    out[:, expr_dim + 3 :] *= expression
    out[:, expr_dim : expr_dim + 3] *= head
    return out


@dataclass
class HeadParams:
    """T frames of pose/expression parameters (numpy float32). Identity shape is stored separately."""

    expr: np.ndarray
    """[T, E] expression coefficients"""
    jaw: np.ndarray
    """[T, 3] axis-angle"""
    neck: np.ndarray
    """[T, 3] axis-angle"""
    rot: np.ndarray
    """[T, 3] axis-angle global (root) rotation"""
    transl: np.ndarray
    """[T, 3] translation, metres"""
    eyes: np.ndarray
    """[T, 6] left then right eye, axis-angle"""

    def __post_init__(self):
        t = self.expr.shape[0]
        for f in fields(self):
            value = np.asarray(getattr(self, f.name), dtype=np.float32)
            if value.ndim != 2 or value.shape[0] != t:
                raise ValueError(f"HeadParams.{f.name} has shape {value.shape}, expected [{t}, …]")
            setattr(self, f.name, value)

    def __len__(self) -> int:
        return self.expr.shape[0]

    @classmethod
    def zeros(cls, num_frames: int, num_expr: int) -> HeadParams:
        z3 = np.zeros((num_frames, 3), np.float32)
        return cls(
            np.zeros((num_frames, num_expr), np.float32),
            z3,
            z3.copy(),
            z3.copy(),
            z3.copy(),
            np.zeros((num_frames, 6), np.float32),
        )

    def slice(self, index) -> HeadParams:
        """Frames ``index`` (int, slice or array) as a new HeadParams."""
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1)
        return HeadParams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def torch_kwargs(self, device=None) -> dict:
        """Keyword arguments for ``HeadModel.forward`` (without shape)."""
        import torch

        t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        return dict(
            expr=t(self.expr),
            jaw=t(self.jaw),
            neck=t(self.neck),
            rotation=t(self.rot),
            translation=t(self.transl),
            eyes=t(self.eyes),
        )

    # -- motion arrays ([T, E + 6] = expression, global rotation, jaw) ----------------
    def to_motion(self) -> np.ndarray:
        return np.concatenate([self.expr, self.rot, self.jaw], axis=1)

    @classmethod
    def from_motion(cls, motion: np.ndarray, base: HeadParams | None = None) -> HeadParams:
        """Motion [T, E + 6] → parameters; neck, translation and eyes come from frame 0 of ``base`` (or zero).

        The motion's global rotation is applied on top of ``base``'s (as a head
        turning relative to where the tracked subject faced the camera).
        """
        motion = np.asarray(motion, dtype=np.float32)
        if motion.ndim != 2 or motion.shape[1] < 7:
            raise SplattalkError(
                f"a motion array must be [T, E+6] (expression, rotation, jaw); got shape {motion.shape}"
            )
        e = motion.shape[1] - 6
        t = motion.shape[0]
        out = cls.zeros(t, e)
        out.expr = motion[:, :e].copy()
        out.rot = motion[:, e : e + 3].copy()
        out.jaw = motion[:, e + 3 :].copy()
        if base is not None:
            if base.expr.shape[1] != e:
                raise SplattalkError(
                    f"the motion has {e} expression coefficients but the avatar's head model has {base.expr.shape[1]}: "
                    "it was made for another head model (FLAME motions need a FLAME avatar)"
                )
            out.neck[:] = base.neck[0]
            out.transl[:] = base.transl[0]
            out.eyes[:] = base.eyes[0]
            out.rot = _compose_axis_angle(base.rot[0], out.rot)
        return out


def _compose_axis_angle(base: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """R(base) applied after R(rel) per frame, as axis-angle [T, 3]."""
    from scipy.spatial.transform import Rotation

    return (
        (Rotation.from_rotvec(np.broadcast_to(base, rel.shape)) * Rotation.from_rotvec(rel))
        .as_rotvec()
        .astype(np.float32)
    )
