"""Linear blend skinning, FLAME-style, as a few short pure functions.

Conventions: batch dimension first, axis-angle rotations, joints ordered
parent-before-child (``parents[0] == -1``).
"""

from __future__ import annotations

import torch


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula. rotvec: [..., 3] → rotation matrices [..., 3, 3].

    Stable at zero: uses the Taylor expansion of sin(θ)/θ and (1-cos θ)/θ²
    for small angles, so gradients stay finite at the identity.
    """
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(skew)
    return eye + a[..., None] * skew + b[..., None] * (skew @ skew)


def blend_shapes(coeffs: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Linear vertex offsets. coeffs: [B, K], dirs: [V, 3, K] → offsets [B, V, 3]."""
    v = dirs.shape[0]
    return (coeffs @ dirs.reshape(v * 3, -1).T).reshape(coeffs.shape[0], v, 3)


def regress_joints(vertices: torch.Tensor, regressor: torch.Tensor) -> torch.Tensor:
    """Joint locations from vertices. vertices: [B, V, 3], regressor: [J, V] → [B, J, 3]."""
    return torch.einsum("jv,bvc->bjc", regressor, vertices)


def pose_corrective_offsets(rot_mats: torch.Tensor, posedirs: torch.Tensor) -> torch.Tensor:
    """Pose-dependent correctives. rot_mats: [B, J, 3, 3] (root first), posedirs: [(J-1)*9, V*3] → [B, V, 3].

    The root joint is excluded, as in FLAME: a global rotation changes no shape.
    """
    batch = rot_mats.shape[0]
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    feature = (rot_mats[:, 1:] - eye).reshape(batch, -1)
    return (feature @ posedirs).reshape(batch, -1, 3)


def rigid_transforms(
    rot_mats: torch.Tensor, joints: torch.Tensor, parents: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain joint rotations along the kinematic tree.

    rot_mats: [B, J, 3, 3] local rotations; joints: [B, J, 3] rest joint locations;
    parents: [J] (parents[0] = -1).
    Returns posed joint locations [B, J, 3] and skinning transforms [B, J, 4, 4]
    that map a rest-pose point to its posed location for each joint.
    """
    batch, num_joints = joints.shape[:2]
    rel_joints = joints.clone()
    rel_joints[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    local = torch.zeros(batch, num_joints, 4, 4, dtype=joints.dtype, device=joints.device)
    local[..., :3, :3] = rot_mats
    local[..., :3, 3] = rel_joints
    local[..., 3, 3] = 1.0
    chain = [local[:, 0]]
    for j in range(1, num_joints):
        chain.append(chain[int(parents[j])] @ local[:, j])
    world = torch.stack(chain, dim=1)
    posed_joints = world[..., :3, 3].clone()
    # Remove the rest-pose joint location so the transform acts on rest-pose vertices.
    rest = torch.einsum("bjrc,bjc->bjr", world[..., :3, :3], joints)
    skinning = world.clone()
    skinning[..., :3, 3] = world[..., :3, 3] - rest
    return posed_joints, skinning


def skin_vertices(vertices: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Blend per-joint transforms. vertices: [B, V, 3], weights: [V, J], transforms: [B, J, 4, 4] → [B, V, 3]."""
    batch, joints = transforms.shape[:2]
    blended = (weights @ transforms[..., :3, :].reshape(batch, joints, 12)).reshape(batch, -1, 3, 4)
    # per-vertex 3×4 transform applied as three multiply-adds (faster than a batched 3×3 matmul)
    return (
        blended[..., 0] * vertices[..., 0:1]
        + blended[..., 1] * vertices[..., 1:2]
        + blended[..., 2] * vertices[..., 2:3]
        + blended[..., 3]
    )


def lbs(
    template: torch.Tensor,
    shape_offsets: torch.Tensor,
    rot_mats: torch.Tensor,
    regressor: torch.Tensor,
    parents: torch.Tensor,
    weights: torch.Tensor,
    posedirs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Full skinning pass.

    template: [V, 3]; shape_offsets: [B, V, 3] (identity + expression);
    rot_mats: [B, J, 3, 3]; regressor: [J, V]; parents: [J]; weights: [V, J];
    posedirs: [(J-1)*9, V*3] or None.
    Returns posed vertices [B, V, 3] and posed joints [B, J, 3].
    """
    shaped = template + shape_offsets
    joints = regress_joints(shaped, regressor)
    if posedirs is not None:
        shaped = shaped + pose_corrective_offsets(rot_mats, posedirs)
    posed_joints, transforms = rigid_transforms(rot_mats, joints, parents)
    return skin_vertices(shaped, weights, transforms), posed_joints


def barycentric_points(
    vertices: torch.Tensor, faces: torch.Tensor, face_ids: torch.Tensor, bary: torch.Tensor
) -> torch.Tensor:
    """Points on the mesh. vertices: [B, V, 3], faces: [F, 3], face_ids: [L], bary: [L, 3] → [B, L, 3]."""
    corners = vertices[:, faces[face_ids]]  # [B, L, 3, 3]
    return (corners * bary[None, :, :, None]).sum(-2)
