"""One interface for every parametric head model (FLAME 2020/2023, the built-in default head).

A :class:`HeadModel` is a torch module holding the model's arrays as buffers
and a :meth:`HeadModel.forward` that poses it. Parameters follow FLAME's split:
identity ``shape``, ``expr``ession, and five joints — root (global
``rotation``), ``neck``, ``jaw`` and the two ``eyes`` — plus a ``translation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from splattalk.head import lbs as _lbs

JOINT_NAMES = ("root", "neck", "jaw", "eye_left", "eye_right")
"""Joint order shared by every head model (FLAME's order)."""

NUM_MEDIAPIPE_LANDMARKS = 478
"""mediapipe face landmarker points: 468 face mesh + 10 iris."""


@dataclass
class HeadOutput:
    vertices: torch.Tensor
    """[B, V, 3] posed vertices, in the model's units (metres)."""
    landmarks: torch.Tensor
    """[B, L, 3] embedded landmarks (see ``HeadModel.landmark_ids``)."""
    joints: torch.Tensor
    """[B, J, 3] posed joint locations."""


class HeadModel(torch.nn.Module):
    """A posable head mesh. Construct with :meth:`from_arrays`; see ``head.flame`` and ``head.default``."""

    model_id: str
    expr_names: tuple[str, ...] | None
    regions: dict[str, np.ndarray]

    # Array fields, with their shapes (V vertices, F faces, S shape, E expression, J joints, L landmarks).
    REQUIRED = {
        "v_template": "[V, 3] float",
        "faces": "[F, 3] int",
        "shapedirs": "[V, 3, S] float",
        "exprdirs": "[V, 3, E] float",
        "J_regressor": "[J, V] float",
        "parents": "[J] int",
        "lbs_weights": "[V, J] float",
        "lmk_face_ids": "[L] int",
        "lmk_bary": "[L, 3] float",
        "lmk_ids": "[L] int (which mediapipe landmark each embedded point is)",
    }
    OPTIONAL = {
        "posedirs": "[(J-1)*9, V*3] float",
        "uvs": "[Vt, 2] float",
        "uv_faces": "[F, 3] int",
    }

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        model_id: str,
        expr_names: tuple[str, ...] | None = None,
        regions: Mapping[str, np.ndarray] | None = None,
    ):
        super().__init__()
        self.model_id = model_id
        self.expr_names = tuple(expr_names) if expr_names is not None else None
        self.regions = {k: np.asarray(v, dtype=np.int64) for k, v in (regions or {}).items()}
        for name in self.REQUIRED:
            self.register_buffer(name, _as_tensor(name, arrays[name]), persistent=False)
        for name in self.OPTIONAL:
            value = arrays.get(name)
            self.register_buffer(name, None if value is None else _as_tensor(name, value), persistent=False)
        if len(self.parents) != len(JOINT_NAMES):
            raise ValueError(
                f"head model {model_id!r} has {len(self.parents)} joints, expected {len(JOINT_NAMES)} {JOINT_NAMES}"
            )
        self._parents_list = [int(p) for p in self.parents]

    # -- sizes -----------------------------------------------------------------------
    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def num_shape(self) -> int:
        return self.shapedirs.shape[-1]

    @property
    def num_expr(self) -> int:
        return self.exprdirs.shape[-1]

    @property
    def faces_np(self) -> np.ndarray:
        return self.faces.cpu().numpy()

    # -- posing ----------------------------------------------------------------------
    def forward(
        self,
        shape: torch.Tensor | None = None,
        expr: torch.Tensor | None = None,
        rotation: torch.Tensor | None = None,
        neck: torch.Tensor | None = None,
        jaw: torch.Tensor | None = None,
        eyes: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
    ) -> HeadOutput:
        """Pose the head.

        shape: [B, S] or [S] (broadcast over the batch); expr: [B, E];
        rotation, neck, jaw: [B, 3] axis-angle; eyes: [B, 6] (left then right,
        axis-angle); translation: [B, 3]. Any argument left ``None`` is zero.
        Returns vertices [B, V, 3], landmarks [B, L, 3], joints [B, J, 3].
        """
        given = [t for t in (shape, expr, rotation, neck, jaw, eyes, translation) if t is not None]
        batch = max([t.shape[0] for t in given if t.dim() == 2] or [1])
        dtype, device = self.v_template.dtype, self.v_template.device

        def param(value: torch.Tensor | None, size: int) -> torch.Tensor:
            if value is None:
                return torch.zeros(batch, size, dtype=dtype, device=device)
            value = value.to(dtype=dtype, device=device)
            if value.dim() == 1:
                value = value[None]
            if value.shape[-1] != size:
                raise ValueError(f"expected {size} values per frame, got {value.shape[-1]}")
            return value.expand(batch, size)

        offsets = _lbs.blend_shapes(param(shape, self.num_shape), self.shapedirs)
        offsets = offsets + _lbs.blend_shapes(param(expr, self.num_expr), self.exprdirs)
        pose = torch.cat([param(rotation, 3), param(neck, 3), param(jaw, 3), param(eyes, 6)], dim=-1).reshape(
            batch, len(JOINT_NAMES), 3
        )
        rot_mats = _lbs.axis_angle_to_matrix(pose)
        vertices, joints = _lbs.lbs(
            self.v_template, offsets, rot_mats, self.J_regressor, self.parents, self.lbs_weights, self.posedirs
        )
        t = param(translation, 3)[:, None]
        vertices = vertices + t
        joints = joints + t
        landmarks = _lbs.barycentric_points(vertices, self.faces, self.lmk_face_ids, self.lmk_bary)
        return HeadOutput(vertices=vertices, landmarks=landmarks, joints=joints)

    # -- I/O -------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for name in (*self.REQUIRED, *self.OPTIONAL):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.cpu().numpy()
        return out


def _as_tensor(name: str, value: np.ndarray) -> torch.Tensor:
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.integer):
        return torch.from_numpy(array.astype(np.int64))
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
