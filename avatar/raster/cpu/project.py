"""Numba kernels of the CPU rasterizer: EWA projection of 3D Gaussians and its backward.

One loop over Gaussians, cameras inside; serial on purpose: this is O(N) work of a few
milliseconds, less than waking a thread pool costs on a busy machine. Arithmetic is float64 inside, float32
in and out. Formulas and constants follow :mod:`..conventions` (gsplat's); the
backward is the chain rule of the forward written out by hand, checked in the tests
against torch autograd of :mod:`..reference`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

import splattalk.avatar.raster.conventions as rc

_ALPHA_MIN = rc.ALPHA_MIN
_EXTEND_MAX = rc.EXTEND_MAX
_MARGIN = rc.FRUSTUM_MARGIN
_RADIUS_CAP = 2.0**30
# Numba's float() keeps a float32 a float32; np.float64() really widens it.
_F64 = np.float64


@njit(cache=True, inline="always")
def _unit_quat(quats, g):
    w, x, y, z = (_F64(quats[g, 0]), _F64(quats[g, 1]), _F64(quats[g, 2]), _F64(quats[g, 3]))
    norm = max(math.sqrt(w * w + x * x + y * y + z * z), 1e-12)
    return w / norm, x / norm, y / norm, z / norm, norm


@njit(cache=True, inline="always")
def _rotmat(w, x, y, z, rot):
    rot[0, 0] = 1 - 2 * (y * y + z * z)
    rot[0, 1] = 2 * (x * y - w * z)
    rot[0, 2] = 2 * (x * z + w * y)
    rot[1, 0] = 2 * (x * y + w * z)
    rot[1, 1] = 1 - 2 * (x * x + z * z)
    rot[1, 2] = 2 * (y * z - w * x)
    rot[2, 0] = 2 * (x * z - w * y)
    rot[2, 1] = 2 * (y * z + w * x)
    rot[2, 2] = 1 - 2 * (x * x + y * y)


@njit(cache=True, inline="always")
def _matmul(a, b, out, transpose_a=False, transpose_b=False):
    """out = op(a) op(b) for tiny matrices (numba's @ goes through BLAS: too slow here)."""
    rows = a.shape[1] if transpose_a else a.shape[0]
    inner = a.shape[0] if transpose_a else a.shape[1]
    cols = b.shape[0] if transpose_b else b.shape[1]
    for i in range(rows):
        for j in range(cols):
            acc = 0.0
            for k in range(inner):
                aik = a[k, i] if transpose_a else a[i, k]
                bkj = b[j, k] if transpose_b else b[k, j]
                acc += aik * bkj
            out[i, j] = acc


@njit(cache=True, inline="always")
def _camera_frame(viewmats, Ks, cam, width, height, rot, trans):
    """Camera rotation/translation into rot/trans; returns intrinsics and Jacobian clamps."""
    for i in range(3):
        for j in range(3):
            rot[i, j] = viewmats[cam, i, j]
        trans[i] = viewmats[cam, i, 3]
    fx, fy, cx, cy = _F64(Ks[cam, 0, 0]), _F64(Ks[cam, 1, 1]), _F64(Ks[cam, 0, 2]), _F64(Ks[cam, 1, 2])
    lim_x_pos = (width - cx) / fx + _MARGIN * 0.5 * width / fx
    lim_x_neg = cx / fx + _MARGIN * 0.5 * width / fx
    lim_y_pos = (height - cy) / fy + _MARGIN * 0.5 * height / fy
    lim_y_neg = cy / fy + _MARGIN * 0.5 * height / fy
    return fx, fy, cx, cy, lim_x_pos, lim_x_neg, lim_y_pos, lim_y_neg


@njit(cache=True)
def project_forward(
    means,
    quats,
    scales,
    opacities,
    viewmats,
    Ks,
    width,
    height,
    near,
    far,
    eps2d,
    means2d,
    conics,
    depths,
    radii,
):
    """means [N,3], quats [N,4], scales [N,3], opacities [N], viewmats [C,4,4], Ks [C,3,3]
    -> fills means2d [C,N,2], conics [C,N,3], depths [C,N], radii [C,N,2] (0 = dropped)."""
    n = means.shape[0]
    rq = np.empty((3, 3))
    rot = np.empty((3, 3))
    trans = np.empty(3)
    cov = np.empty((3, 3))
    pc = np.empty(3)
    for g in range(n):
        w, qx, qy, qz, _ = _unit_quat(quats, g)
        _rotmat(w, qx, qy, qz, rq)
        # A = R_cam R_q S, so the camera covariance is A A^T; built per camera below.
        for cam in range(viewmats.shape[0]):
            radii[cam, g, 0] = 0
            radii[cam, g, 1] = 0
            means2d[cam, g, 0] = 0
            means2d[cam, g, 1] = 0
            conics[cam, g, 0] = 0
            conics[cam, g, 1] = 0
            conics[cam, g, 2] = 0
            fx, fy, cx, cy, lxp, lxn, lyp, lyn = _camera_frame(viewmats, Ks, cam, width, height, rot, trans)
            for i in range(3):
                pc[i] = rot[i, 0] * means[g, 0] + rot[i, 1] * means[g, 1] + rot[i, 2] * means[g, 2] + trans[i]
            x, y, z = pc[0], pc[1], pc[2]
            depths[cam, g] = z
            if z < near or z > far:
                continue
            for i in range(3):
                for j in range(3):
                    a_ij = 0.0
                    for k in range(3):
                        a_ij += rot[i, k] * rq[k, j]
                    cov[i, j] = a_ij * scales[g, j]  # cov holds A for now
            rz = 1.0 / z
            tx = z * min(lxp, max(-lxn, x * rz))
            ty = z * min(lyp, max(-lyn, y * rz))
            j00, j02 = fx * rz, -fx * tx * rz * rz
            j11, j12 = fy * rz, -fy * ty * rz * rz
            # rows of J A (2 x 3); cov2d = (J A)(J A)^T
            u0 = j00 * cov[0, 0] + j02 * cov[2, 0]
            u1 = j00 * cov[0, 1] + j02 * cov[2, 1]
            u2 = j00 * cov[0, 2] + j02 * cov[2, 2]
            v0 = j11 * cov[1, 0] + j12 * cov[2, 0]
            v1 = j11 * cov[1, 1] + j12 * cov[2, 1]
            v2 = j11 * cov[1, 2] + j12 * cov[2, 2]
            ca = u0 * u0 + u1 * u1 + u2 * u2 + eps2d
            cb = u0 * v0 + u1 * v1 + u2 * v2
            cc = v0 * v0 + v1 * v1 + v2 * v2 + eps2d
            det = ca * cc - cb * cb
            if not det > 0:
                continue
            op = _F64(opacities[g])
            if not op >= _ALPHA_MIN:
                continue
            extend = min(_EXTEND_MAX, math.sqrt(2.0 * math.log(op / _ALPHA_MIN)))
            rx = min(math.ceil(extend * math.sqrt(ca)), _RADIUS_CAP)
            ry = min(math.ceil(extend * math.sqrt(cc)), _RADIUS_CAP)
            if rx <= 0 and ry <= 0:
                continue
            mx = fx * x * rz + cx
            my = fy * y * rz + cy
            if mx + rx <= 0 or mx - rx >= width or my + ry <= 0 or my - ry >= height:
                continue
            radii[cam, g, 0] = int(rx)
            radii[cam, g, 1] = int(ry)
            means2d[cam, g, 0] = mx
            means2d[cam, g, 1] = my
            conics[cam, g, 0] = cc / det
            conics[cam, g, 1] = -cb / det
            conics[cam, g, 2] = ca / det


@njit(cache=True)
def project_backward(
    means,
    quats,
    scales,
    viewmats,
    Ks,
    width,
    height,
    radii,
    conics,
    v_means2d,
    v_conics,
    v_depths,
    v_means,
    v_quats,
    v_scales,
    v_cams,
):
    """Vector-Jacobian product of project_forward. v_* inputs [C,N,...]; fills v_means [N,3],
    v_quats [N,4], v_scales [N,3] and per-(camera, Gaussian) camera gradients v_cams [C,N,12]
    (dL/dR row-major then dL/dt), which the caller sums over N."""
    n = means.shape[0]
    rq, rot, trans, amat = np.empty((3, 3)), np.empty((3, 3)), np.empty(3), np.empty((3, 3))
    v_rq, v_mean, v_scale = np.empty((3, 3)), np.empty(3), np.empty(3)
    s, m, v_pc, jac = np.empty(3), np.empty(3), np.empty(3), np.zeros((2, 3))
    cov_c, vc2, tmp23, v_cov_c = np.empty((3, 3)), np.empty((2, 2)), np.empty((2, 3)), np.empty((3, 3))
    v_jac, v_a, v_m = np.empty((2, 3)), np.empty((3, 3)), np.empty((3, 3))
    m_mat, v_r_cov = np.empty((3, 3)), np.empty((3, 3))
    for g in range(n):
        v_rq[:] = 0
        v_mean[:] = 0
        v_scale[:] = 0
        w, qx, qy, qz, qnorm = _unit_quat(quats, g)
        _rotmat(w, qx, qy, qz, rq)
        for j in range(3):
            s[j] = scales[g, j]
            m[j] = means[g, j]
        for cam in range(viewmats.shape[0]):
            for k in range(12):
                v_cams[cam, g, k] = 0
            fx, fy, cx, cy, lxp, lxn, lyp, lyn = _camera_frame(viewmats, Ks, cam, width, height, rot, trans)
            x = rot[0, 0] * m[0] + rot[0, 1] * m[1] + rot[0, 2] * m[2] + trans[0]
            y = rot[1, 0] * m[0] + rot[1, 1] * m[1] + rot[1, 2] * m[2] + trans[1]
            z = rot[2, 0] * m[0] + rot[2, 1] * m[1] + rot[2, 2] * m[2] + trans[2]
            v_pc[0] = 0
            v_pc[1] = 0
            v_pc[2] = v_depths[cam, g]  # depth = camera z, defined even for dropped Gaussians
            if radii[cam, g, 0] > 0 or radii[cam, g, 1] > 0:
                # conic = inverse(cov2d): dL/dcov2d = -P G P with G the symmetric conic grad
                p00, p01, p11 = _F64(conics[cam, g, 0]), _F64(conics[cam, g, 1]), _F64(conics[cam, g, 2])
                g00, g11 = _F64(v_conics[cam, g, 0]), _F64(v_conics[cam, g, 2])
                g01 = 0.5 * _F64(v_conics[cam, g, 1])
                h00 = p00 * g00 + p01 * g01
                h01 = p00 * g01 + p01 * g11
                h10 = p01 * g00 + p11 * g01
                h11 = p01 * g01 + p11 * g11
                c00 = -(h00 * p00 + h01 * p01)
                c01 = -(h00 * p01 + h01 * p11)
                c11 = -(h10 * p01 + h11 * p11)
                rz = 1.0 / z
                rz2 = rz * rz
                xr, yr = x * rz, y * rz
                tx = z * min(lxp, max(-lxn, xr))
                ty = z * min(lyp, max(-lyn, yr))
                jac[0, 0], jac[0, 2] = fx * rz, -fx * tx * rz2
                jac[1, 1], jac[1, 2] = fy * rz, -fy * ty * rz2
                for i in range(3):
                    for j in range(3):
                        acc = 0.0
                        for k in range(3):
                            acc += rot[i, k] * rq[k, j]
                        amat[i, j] = acc * s[j]
                _matmul(amat, amat, cov_c, False, True)  # camera-space covariance
                vc2[0, 0], vc2[0, 1], vc2[1, 0], vc2[1, 1] = c00, c01, c01, c11
                _matmul(vc2, jac, tmp23)
                _matmul(jac, tmp23, v_cov_c, True, False)
                _matmul(tmp23, cov_c, v_jac)
                vmx, vmy = _F64(v_means2d[cam, g, 0]), _F64(v_means2d[cam, g, 1])
                v_pc[0] += fx * rz * vmx
                v_pc[1] += fy * rz * vmy
                v_pc[2] += -(fx * x * vmx + fy * y * vmy) * rz2
                rz3 = rz2 * rz
                # v_jac holds half of dL/dJ (= vc2 J cov_c); the factor 2 is folded in below
                if xr <= lxp and xr >= -lxn:
                    v_pc[0] += -2.0 * fx * rz2 * v_jac[0, 2]
                else:
                    v_pc[2] += -2.0 * fx * rz3 * v_jac[0, 2] * tx
                if yr <= lyp and yr >= -lyn:
                    v_pc[1] += -2.0 * fy * rz2 * v_jac[1, 2]
                else:
                    v_pc[2] += -2.0 * fy * rz3 * v_jac[1, 2] * ty
                v_pc[2] += 2.0 * (
                    -fx * rz2 * v_jac[0, 0]
                    - fy * rz2 * v_jac[1, 1]
                    + 2.0 * fx * tx * rz3 * v_jac[0, 2]
                    + 2.0 * fy * ty * rz3 * v_jac[1, 2]
                )
                # cov_c = A A^T with A = R M, M = R_q S
                _matmul(v_cov_c, amat, v_a)  # half of dL/dA
                _matmul(rot, v_a, v_m, True, False)
                for i in range(3):
                    for j in range(3):
                        m_mat[i, j] = rq[i, j] * s[j]
                _matmul(v_a, m_mat, v_r_cov, False, True)
                for i in range(3):
                    for j in range(3):
                        v_m[i, j] *= 2.0
                        v_r_cov[i, j] *= 2.0
                for i in range(3):
                    for j in range(3):
                        v_rq[i, j] += v_m[i, j] * s[j]
                        v_scale[j] += v_m[i, j] * rq[i, j]
                        v_cams[cam, g, 3 * i + j] += v_r_cov[i, j]
            # p_c = R m + t
            for i in range(3):
                for j in range(3):
                    v_mean[j] += rot[i, j] * v_pc[i]
                    v_cams[cam, g, 3 * i + j] += v_pc[i] * m[j]
                v_cams[cam, g, 9 + i] += v_pc[i]
        # rotation matrix of the unit quaternion, then the normalisation
        G = v_rq
        vw = 2 * (-qz * G[0, 1] + qy * G[0, 2] + qz * G[1, 0] - qx * G[1, 2] - qy * G[2, 0] + qx * G[2, 1])
        vx = 2 * (
            qy * G[0, 1]
            + qz * G[0, 2]
            + qy * G[1, 0]
            - 2 * qx * G[1, 1]
            - w * G[1, 2]
            + qz * G[2, 0]
            + w * G[2, 1]
            - 2 * qx * G[2, 2]
        )
        vy = 2 * (
            -2 * qy * G[0, 0]
            + qx * G[0, 1]
            + w * G[0, 2]
            + qx * G[1, 0]
            + qz * G[1, 2]
            - w * G[2, 0]
            + qz * G[2, 1]
            - 2 * qy * G[2, 2]
        )
        vz = 2 * (
            -2 * qz * G[0, 0]
            - w * G[0, 1]
            + qx * G[0, 2]
            + w * G[1, 0]
            - 2 * qz * G[1, 1]
            + qy * G[1, 2]
            + qx * G[2, 0]
            + qy * G[2, 1]
        )
        dot = w * vw + qx * vx + qy * vy + qz * vz
        v_quats[g, 0] = (vw - w * dot) / qnorm
        v_quats[g, 1] = (vx - qx * dot) / qnorm
        v_quats[g, 2] = (vy - qy * dot) / qnorm
        v_quats[g, 3] = (vz - qz * dot) / qnorm
        for j in range(3):
            v_means[g, j] = v_mean[j]
            v_scales[g, j] = v_scale[j]
