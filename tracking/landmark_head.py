"""The landmark-carrying part of a head model, posed exactly but cheaply, for fitting.

Only the vertices that the embedded landmarks sit on are blended and skinned
(478 of the default head's 4666, ~300 of FLAME's 5023); the joints, which
depend on every vertex, are regressed linearly from shape and expression
coefficients with precomputed joint blend shapes. The result equals
``HeadModel.forward(...).landmarks`` (a test checks it) at a fraction of the cost.
"""

from __future__ import annotations

import torch

from splattalk.head import lbs
from splattalk.head.model import HeadModel


class LandmarkHead:
    """Poses the landmarks of ``model``; holds the sliced arrays (state), hence a class."""

    def __init__(self, model: HeadModel):
        corners = model.faces[model.lmk_face_ids]  # [L, 3]
        bary = model.lmk_bary
        # Only corners with a non-zero barycentric weight matter (the default head's are one-hot).
        needed = corners[bary.abs() > 0]
        used, _ = torch.unique(needed, return_inverse=True)
        lookup = torch.full((model.num_vertices,), -1, dtype=torch.long)
        lookup[used] = torch.arange(len(used))
        self.num_landmarks = corners.shape[0]
        self.corners = torch.where(bary.abs() > 0, lookup[corners], torch.zeros_like(corners))  # [L, 3] into used
        self.bary = bary
        one_hot = bool(((bary == 0) | (bary == 1)).all())
        # one-hot barycentrics (every default-head landmark is a vertex): a plain gather suffices
        self.direct = torch.gather(self.corners, 1, bary.argmax(1, keepdim=True))[:, 0] if one_hot else None
        num_used = len(used)
        self.template = model.v_template[used]
        # blend shapes as [K, U*3] matrices: coefficients @ dirs is one matmul
        self.shapedirs = model.shapedirs[used].permute(2, 0, 1).reshape(-1, num_used * 3)
        self.exprdirs = model.exprdirs[used].permute(2, 0, 1).reshape(-1, num_used * 3)
        self.weights = model.lbs_weights[used]
        self.parents = model.parents
        regressor = model.J_regressor
        self.joint_template = regressor @ model.v_template
        self.joint_shapedirs = torch.einsum("jv,vck->kjc", regressor, model.shapedirs).reshape(model.num_shape, -1)
        self.joint_exprdirs = torch.einsum("jv,vck->kjc", regressor, model.exprdirs).reshape(model.num_expr, -1)
        self.num_shape, self.num_expr = model.num_shape, model.num_expr
        self.posedirs = None
        if model.posedirs is not None:
            features = model.posedirs.shape[0]
            self.posedirs = model.posedirs.reshape(features, -1, 3)[:, used].reshape(features, -1)

    def rest_joints(self, shape: torch.Tensor, expr: torch.Tensor | None = None) -> torch.Tensor:
        """Joint locations [B, J, 3] (or [J, 3] without ``expr``) before posing."""
        joints = self.joint_template + (shape @ self.joint_shapedirs).reshape(-1, 3)
        if expr is None:
            return joints
        return joints + (expr @ self.joint_exprdirs).reshape(len(expr), -1, 3)

    def __call__(self, shape: torch.Tensor, expr: torch.Tensor, pose: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
        """Landmarks [B, L, 3] in the model's world frame.

        shape: [S]; expr: [B, E]; pose: [B, J, 3] axis-angle (root, neck, jaw,
        eye_left, eye_right); translation: [B, 3].
        """
        batch = len(expr)
        shaped = self.template + (shape @ self.shapedirs).reshape(-1, 3)
        shaped = shaped + (expr @ self.exprdirs).reshape(batch, -1, 3)
        joints = self.rest_joints(shape, expr)
        rot_mats = lbs.axis_angle_to_matrix(pose)
        if self.posedirs is not None:
            shaped = shaped + lbs.pose_corrective_offsets(rot_mats, self.posedirs)
        _, transforms = lbs.rigid_transforms(rot_mats, joints, self.parents)
        # blend the per-joint [3, 4] transforms with one matmul, then apply them
        blended = (self.weights @ transforms[:, :, :3, :].reshape(batch, -1, 12)).reshape(batch, -1, 3, 4)
        vertices = (blended[..., :3] * shaped[..., None, :]).sum(-1) + blended[..., 3] + translation[:, None]
        if self.direct is not None:
            return vertices[:, self.direct]
        corners = vertices[:, self.corners]  # [B, L, 3, 3]
        return (corners * self.bary[None, :, :, None]).sum(-2)
