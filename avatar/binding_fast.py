"""The triangle binding as one numba kernel, for playback (viewer, export) where nothing needs gradients.

Single-threaded on purpose: at 20k Gaussians the work is ~1 ms, less than the
cost of waking threads, and it leaves the other core to the server and encoder.

Same mathematics as :func:`splattalk.avatar.binding.pose_gaussians` (tests hold
them equal); this path skips autograd and the per-op overhead of many small
torch operations, so posing 20k Gaussians takes about a millisecond.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _face_frames(verts, faces, rot, origin, size, face_q):
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        e1 = verts[b] - verts[a]
        e2 = verts[c] - verts[a]
        e3 = verts[c] - verts[b]
        n0 = e1[1] * e2[2] - e1[2] * e2[1]
        n1 = e1[2] * e2[0] - e1[0] * e2[2]
        n2 = e1[0] * e2[1] - e1[1] * e2[0]
        nn = max(np.sqrt(n0 * n0 + n1 * n1 + n2 * n2), 1e-20)
        n0, n1, n2 = n0 / nn, n1 / nn, n2 / nn
        l1 = np.sqrt(e1[0] ** 2 + e1[1] ** 2 + e1[2] ** 2)
        t0, t1, t2 = e1[0] / max(l1, 1e-20), e1[1] / max(l1, 1e-20), e1[2] / max(l1, 1e-20)
        b0 = n1 * t2 - n2 * t1
        b1 = n2 * t0 - n0 * t2
        b2 = n0 * t1 - n1 * t0
        # columns t, b, n
        rot[f, 0, 0], rot[f, 1, 0], rot[f, 2, 0] = t0, t1, t2
        rot[f, 0, 1], rot[f, 1, 1], rot[f, 2, 1] = b0, b1, b2
        rot[f, 0, 2], rot[f, 1, 2], rot[f, 2, 2] = n0, n1, n2
        for k in range(3):
            origin[f, k] = (verts[a, k] + verts[b, k] + verts[c, k]) / 3.0
        l2 = np.sqrt(e2[0] ** 2 + e2[1] ** 2 + e2[2] ** 2)
        l3 = np.sqrt(e3[0] ** 2 + e3[1] ** 2 + e3[2] ** 2)
        size[f] = (l1 + l2 + l3) / 3.0
        # rotation matrix → quaternion (largest-denominator branch), w >= 0
        m00, m01, m02 = t0, b0, n0
        m10, m11, m12 = t1, b1, n1
        m20, m21, m22 = t2, b2, n2
        d0 = 1 + m00 + m11 + m22
        d1 = 1 + m00 - m11 - m22
        d2 = 1 - m00 + m11 - m22
        d3 = 1 - m00 - m11 + m22
        if d0 >= d1 and d0 >= d2 and d0 >= d3:
            w, x, y, z = d0, m21 - m12, m02 - m20, m10 - m01
        elif d1 >= d2 and d1 >= d3:
            w, x, y, z = m21 - m12, d1, m01 + m10, m02 + m20
        elif d2 >= d3:
            w, x, y, z = m02 - m20, m01 + m10, d2, m12 + m21
        else:
            w, x, y, z = m10 - m01, m02 + m20, m12 + m21, d3
        qn = np.sqrt(w * w + x * x + y * y + z * z)
        s = 1.0 / qn if w >= 0 else -1.0 / qn
        face_q[f, 0], face_q[f, 1], face_q[f, 2], face_q[f, 3] = w * s, x * s, y * s, z * s


@numba.njit(cache=True)
def _pose(parent, local_means, local_quats, scales_unit, rot, origin, size, face_q, means, quats, scales):
    for i in range(parent.shape[0]):
        f = parent[i]
        s = size[f]
        ox, oy, oz = local_means[i, 0] * s, local_means[i, 1] * s, local_means[i, 2] * s
        for k in range(3):
            means[i, k] = rot[f, k, 0] * ox + rot[f, k, 1] * oy + rot[f, k, 2] * oz + origin[f, k]
            scales[i, k] = scales_unit[i, k] * s
        aw, ax, ay, az = face_q[f, 0], face_q[f, 1], face_q[f, 2], face_q[f, 3]
        bw, bx, by, bz = local_quats[i, 0], local_quats[i, 1], local_quats[i, 2], local_quats[i, 3]
        w = aw * bw - ax * bx - ay * by - az * bz
        x = aw * bx + ax * bw + ay * bz - az * by
        y = aw * by - ax * bz + ay * bw + az * bx
        z = aw * bz + ax * by - ay * bx + az * bw
        n = np.sqrt(w * w + x * x + y * y + z * z)
        quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3] = w / n, x / n, y / n, z / n


class FastPoser:
    """Precomputes the activations once; then :meth:`pose` maps vertices [V, 3] → means, quats, scales
    (numpy float32)."""

    def __init__(self, parent, local_means, local_quats, log_scales, faces):
        self.parent = np.ascontiguousarray(parent, dtype=np.int64)
        self.local_means = np.ascontiguousarray(local_means, dtype=np.float32)
        q = np.asarray(local_quats, dtype=np.float32)
        self.local_quats = np.ascontiguousarray(q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12))
        self.scales_unit = np.ascontiguousarray(np.exp(np.asarray(log_scales, dtype=np.float32)))
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        nf, n = len(self.faces), len(self.parent)
        self._rot = np.empty((nf, 3, 3), np.float32)
        self._origin = np.empty((nf, 3), np.float32)
        self._size = np.empty(nf, np.float32)
        self._face_q = np.empty((nf, 4), np.float32)
        self.means = np.empty((n, 3), np.float32)
        self.quats = np.empty((n, 4), np.float32)
        self.scales = np.empty((n, 3), np.float32)

    def pose(self, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """vertices: [V, 3] → means [N, 3], quats [N, 4] (wxyz), scales [N, 3]; the returned arrays are reused on
        the next call."""
        v = np.ascontiguousarray(vertices, dtype=np.float32)
        _face_frames(v, self.faces, self._rot, self._origin, self._size, self._face_q)
        _pose(
            self.parent,
            self.local_means,
            self.local_quats,
            self.scales_unit,
            self._rot,
            self._origin,
            self._size,
            self._face_q,
            self.means,
            self.quats,
            self.scales,
        )
        return self.means, self.quats, self.scales
