"""The landmark-carrying part of a head model, posed in closed form with its Jacobians (numpy, float64).

Only the vertices that the embedded landmarks sit on are blended and skinned;
the joints, which depend on every vertex, come from precomputed joint blend
shapes (the regressor applied to the shape/expression bases), so the result
equals ``HeadModel.forward(...).landmarks`` exactly (a test checks it).

With FLAME's kinematic tree (root ← neck ← jaw, eyes) and the neck held at
zero, a rest-pose vertex ``v`` with skinning weights ``w`` lands at

    x = R0 (y − J0) + J0 + T,   y = v + Σ_{j ∈ jaw, eyes} w_j (R_j − I)(v − J_j)

(R0 the global rotation about the root joint J0, T the translation), which makes
the derivatives with respect to every parameter short expressions. Pose
correctives (FLAME's posedirs) are included in the positions but left out of
the Jacobian (they are small; Gauss–Newton then converges slightly slower).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROOT, NECK, JAW, EYE_LEFT, EYE_RIGHT = range(5)
LOCAL_JOINTS = (JAW, EYE_LEFT, EYE_RIGHT)


def rodrigues(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] of axis-angle vectors [..., 3]."""
    theta2 = (rotvec**2).sum(-1)[..., None, None]
    theta = np.sqrt(theta2)
    small = theta2 < 1e-12
    a = np.where(small, 1 - theta2 / 6, np.sin(theta) / np.where(small, 1, theta))
    b = np.where(small, 0.5 - theta2 / 24, (1 - np.cos(theta)) / np.where(small, 1, theta2))
    k = skew(rotvec)
    return np.eye(3) + a * k + b * (k @ k)


def left_jacobian(rotvec: np.ndarray) -> np.ndarray:
    """SO(3) left Jacobian [..., 3, 3]: R(ω + δ) ≈ exp([J_l(ω) δ]×) R(ω)."""
    theta2 = (rotvec**2).sum(-1)[..., None, None]
    theta = np.sqrt(theta2)
    small = theta2 < 1e-12
    safe = np.where(small, 1, theta)
    b = np.where(small, 0.5 - theta2 / 24, (1 - np.cos(theta)) / safe**2)
    c = np.where(small, 1 / 6 - theta2 / 120, (theta - np.sin(theta)) / safe**3)
    k = skew(rotvec)
    return np.eye(3) + b * k + c * (k @ k)


def skew(v: np.ndarray) -> np.ndarray:
    """[v]× [..., 3, 3] of vectors [..., 3]."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = np.zeros_like(x)
    return np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape[:-1], 3, 3)


@dataclass
class Posed:
    """Landmarks of T frames, and what their Jacobians need."""

    points: np.ndarray  # [T, L, 3]
    context: dict | None = None


class LandmarkModel:
    """Holds the sliced arrays of a :class:`~splattalk.head.model.HeadModel` (state), hence a class."""

    def __init__(self, model):
        if [int(p) for p in model.parents] != [-1, 0, 1, 1, 1]:
            raise ValueError(f"head model {model.model_id!r} does not have FLAME's joint tree")
        faces = model.faces.numpy()
        bary = model.lmk_bary.numpy().astype(np.float64)
        corners = faces[model.lmk_face_ids.numpy()]  # [L, 3]
        used = np.unique(corners[bary != 0])
        lookup = np.full(model.num_vertices, -1)
        lookup[used] = np.arange(len(used))
        self.vertex_ids = used
        # landmark = Σ_c bary[l, c] · vertex[corner[l, c]] as a sparse [L, U] matrix (dense: small)
        self.combine = np.zeros((len(corners), len(used)))
        for c in range(3):
            keep = bary[:, c] != 0
            np.add.at(self.combine, (np.nonzero(keep)[0], lookup[corners[keep, c]]), bary[keep, c])
        self.direct = None
        if np.allclose(self.combine.max(1), 1.0) and (np.count_nonzero(self.combine, axis=1) == 1).all():
            self.direct = self.combine.argmax(1)

        def arr(t):
            return t.numpy().astype(np.float64)

        self.template = arr(model.v_template)[used]
        self.shapedirs = arr(model.shapedirs)[used]
        self.exprdirs = arr(model.exprdirs)[used]
        self.weights = arr(model.lbs_weights)[used]
        regressor = arr(model.J_regressor)
        self.joint_template = regressor @ arr(model.v_template)
        self.joint_shapedirs = np.einsum("jv,vck->jck", regressor, arr(model.shapedirs))
        self.joint_exprdirs = np.einsum("jv,vck->jck", regressor, arr(model.exprdirs))
        self.posedirs = None
        if model.posedirs is not None:
            features = model.posedirs.shape[0]
            self.posedirs = arr(model.posedirs).reshape(features, -1, 3)[:, used]  # [P, U, 3]
        self.num_shape = self.shapedirs.shape[-1]
        self.num_expr = self.exprdirs.shape[-1]
        self.num_landmarks = len(corners)
        # vertices that the jaw or the eyes move; the rest follow the root (and neck) only
        self.moving = np.nonzero(self.weights[:, list(LOCAL_JOINTS)].sum(1) > 0)[0]
        touches = self.combine[:, self.moving] != 0
        self.moving_landmarks = np.nonzero(touches.any(1))[0]
        self.combine_moving = self.combine[np.ix_(self.moving_landmarks, self.moving)]
        self.lm_weights_moving = self.combine_moving @ self.weights[self.moving]  # [Lm, J]
        self.moving_direct = None  # landmark ← vertex lookup when every moving landmark is one moving vertex
        if self.direct is not None:
            self.moving_direct = self.combine_moving.argmax(1)

    def _landmarks(self, per_vertex: np.ndarray) -> np.ndarray:
        """[T, U, ...] → [T, L, ...]."""
        if self.direct is not None:
            return per_vertex[:, self.direct]
        return _combine(self.combine, per_vertex)

    def rest_joints(self, shape: np.ndarray, expr: np.ndarray) -> np.ndarray:
        """[T, J, 3] joint locations before posing."""
        return self.joint_template + self.joint_shapedirs @ shape + _blend(self.joint_exprdirs, expr)

    def __call__(self, shape, expr, rot, jaw, eyes, transl, offsets=None, jacobian: bool = False) -> Posed:
        """Pose T frames: shape [S]; expr [T, E]; rot, jaw [T, 3]; eyes [T, 6]; transl [T, 3];
        offsets [L, 3]: static rest-pose displacements of the landmarks (identity detail beyond
        ``shape``; they move with the landmark's skinning and leave the joints alone)."""
        num = len(expr)
        v = self.template + self.shapedirs @ shape + _blend(self.exprdirs, expr)  # [T, U, 3]
        joints = self.rest_joints(shape, expr)  # [T, J, 3]
        local = {JAW: jaw, EYE_LEFT: eyes[:, :3], EYE_RIGHT: eyes[:, 3:]}
        rots = {j: rodrigues(w) for j, w in local.items()}  # [T, 3, 3]
        r0 = rodrigues(rot)
        eye = np.eye(3)
        skinned = v
        if self.posedirs is not None:
            feature = np.concatenate([np.zeros((num, 9))] + [(rots[j] - eye).reshape(num, 9) for j in LOCAL_JOINTS], 1)
            skinned = v + (feature @ self.posedirs.reshape(len(self.posedirs), -1)).reshape(v.shape)
        mv = self.moving
        y = skinned.copy()
        arms = {}
        for j in LOCAL_JOINTS:
            arm = skinned[:, mv] - joints[:, j, None]  # [T, Um, 3]
            arms[j] = arm @ rots[j].transpose(0, 2, 1)
            y[:, mv] += self.weights[None, mv, j, None] * (arms[j] - arm)
        root = joints[:, ROOT, None]
        a = self._landmarks(y - root)  # [T, L, 3]
        # M = Σ_j w_j (R_j − I) on the moving vertices, per landmark: d landmark / d offset = R0 (I + M̄)
        m = sum(self.weights[None, mv, j, None, None] * (rots[j] - eye)[:, None] for j in LOCAL_JOINTS)  # [T, Um, 3, 3]
        m_bar = self._landmarks_moving(m)  # [T, Lm, 3, 3]
        if offsets is not None:
            a = a + offsets[None]
            a[:, self.moving_landmarks] += (m_bar @ offsets[self.moving_landmarks, :, None])[..., 0]
        x = a @ r0.transpose(0, 2, 1) + root + transl[:, None]
        posed = Posed(points=x)
        if jacobian:
            posed.context = {
                "r0": r0,
                "rot": rot,
                "a": a,
                "local": local,
                "rots": rots,
                "arms": arms,
                "m": m,
                "m_bar": m_bar,
                "offsets": offsets,
            }
        return posed

    def _landmarks_moving(self, per_vertex: np.ndarray) -> np.ndarray:
        """[T, Um, ...] on the moving vertices → [T, Lm, ...] on the landmarks that touch them."""
        if self.moving_direct is not None:
            return per_vertex[:, self.moving_direct]
        return _combine(self.combine_moving, per_vertex)

    def pixel_jacobians(
        self, posed: Posed, d_x: np.ndarray, groups=("rot", "transl", "jaw", "eyes", "expr", "shape", "offset")
    ) -> dict[str, np.ndarray]:
        """Derivatives of the landmarks' pixels, given d_x [T, L, 2, 3] = d pixel / d world point.

        Returns, per parameter group asked for, [T, L, 2, k]: rot, transl, jaw, eyes (6), expr, shape,
        offset (the last one per landmark: d pixel_l / d offset_l)."""
        ctx = posed.context
        r0, a = ctx["r0"], ctx["a"]
        num, num_lmk = d_x.shape[:2]
        lm_idx = self.moving_landmarks
        h = d_x @ r0[:, None]  # [T, L, 2, 3]: pixel per rest-frame displacement
        out = {"transl": d_x}
        # d(R a)/dω = −[R a]× J_l(ω)
        out["rot"] = d_x @ (-skew(a @ r0.transpose(0, 2, 1)) @ left_jacobian(ctx["rot"])[:, None])
        for name, joints in (("jaw", (JAW,)), ("eyes", (EYE_LEFT, EYE_RIGHT))):
            if name not in groups:
                continue
            blocks = []
            for j in joints:
                jl = left_jacobian(ctx["local"][j])[:, None]
                d = -skew(ctx["arms"][j]) @ jl  # [T, Um, 3, 3]
                d = self._landmarks_moving(self.weights[None, self.moving, j, None, None] * d)
                if ctx["offsets"] is not None:  # the offset rides on w_j (R_j − I) as well
                    carried = ctx["offsets"][lm_idx][None] @ ctx["rots"][j].transpose(0, 2, 1)
                    d = d + self.lm_weights_moving[None, :, j, None, None] * (-skew(carried) @ jl)
                full = np.zeros((num, num_lmk, 2, 3))
                full[:, lm_idx] = h[:, lm_idx] @ d
                blocks.append(full)
            out[name] = np.concatenate(blocks, -1)
        if "offset" in groups:
            offset = h.copy()
            offset[:, lm_idx] += h[:, lm_idx] @ ctx["m_bar"]
            out["offset"] = offset
        for name, dirs, joint_dirs in (
            ("expr", self.exprdirs, self.joint_exprdirs),
            ("shape", self.shapedirs, self.joint_shapedirs),
        ):
            if name in groups:
                out[name] = self._basis_pixels(h, d_x, ctx, dirs, joint_dirs)
        return {k: v for k, v in out.items() if k in groups}

    def _basis_pixels(self, h, d_x, ctx, dirs, joint_dirs) -> np.ndarray:
        """d pixel / d coefficient of a linear basis (shape or expression), [T, L, 2, K].

        x = R0 (y − J0) + J0 with y = v + Σ_j w_j (R_j − I)(v − J_j), all linear in the coefficients:
        dx = R0 (dv̄ − dJ0) + dJ0 + R0 Σ_u c_lu (M_u dv_u − Σ_j w_uj (R_j − I) dJ_j)  (moving vertices only)."""
        num, num_lmk = h.shape[:2]
        k = dirs.shape[-1]
        lm_dirs = self._landmark_dirs(dirs) - joint_dirs[ROOT][None]  # [L, 3, K]
        # per landmark l: [T·2, 3] @ [3, K] as one batched matmul over landmarks
        first = np.matmul(h.transpose(1, 0, 2, 3).reshape(num_lmk, num * 2, 3), lm_dirs)
        out = first.reshape(num_lmk, num, 2, k).transpose(1, 0, 2, 3)
        out = out + (d_x.reshape(-1, 3) @ joint_dirs[ROOT]).reshape(num, num_lmk, 2, k)
        eye = np.eye(3)
        moved = ctx["m"] @ dirs[None, self.moving]  # [T, Um, 3, K]
        for j in LOCAL_JOINTS:
            shift = (ctx["rots"][j] - eye) @ joint_dirs[j]  # [T, 3, K]
            moved -= self.weights[None, self.moving, j, None, None] * shift[:, None]
        lm_idx = self.moving_landmarks
        out[:, lm_idx] += h[:, lm_idx] @ self._landmarks_moving(moved)
        return out

    def _landmark_dirs(self, dirs: np.ndarray) -> np.ndarray:
        if self.direct is not None:
            return dirs[self.direct]
        return _combine(self.combine, dirs[None])[0]


def _blend(dirs: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """dirs [N, 3, K], coeffs [T, K] → [T, N, 3] (one matmul)."""
    return (coeffs @ dirs.reshape(-1, dirs.shape[-1]).T).reshape(len(coeffs), *dirs.shape[:2])


def _combine(weights: np.ndarray, per_vertex: np.ndarray) -> np.ndarray:
    """weights [L, U], per_vertex [T, U, ...] → [T, L, ...] (one matmul)."""
    moved = np.moveaxis(per_vertex, 1, 0)  # [U, T, ...]
    out = weights @ moved.reshape(moved.shape[0], -1)
    return np.moveaxis(out.reshape(weights.shape[0], *moved.shape[1:]), 0, 1)
