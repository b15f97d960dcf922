"""Numba kernels of the CPU rasterizer: view-dependent colour from spherical harmonics.

colour = max(sum_k basis_k(d) * sh_k + 0.5, 0) with d the unit vector from the camera
centre to the Gaussian mean (the 3DGS / gsplat convention, see :mod:`..conventions`).
The backward gives dL/dsh and dL/dmeans (through d), and dL/dcamera-centre per
(camera, Gaussian) for the caller to sum. Serial: O(N) work, cheaper than a thread pool.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

import splattalk.avatar.raster.conventions as rc

_C0, _C1 = rc.SH_C0, rc.SH_C1
_XY, _ZZ, _Z0, _XX = rc.SH_C2_XY, rc.SH_C2_ZZ, rc.SH_C2_Z0, rc.SH_C2_XX
_A, _B, _CC0, _CC1, _D0, _D1 = rc.SH_C3_A, rc.SH_C3_B, rc.SH_C3_C0, rc.SH_C3_C1, rc.SH_C3_D0, rc.SH_C3_D1
_OFFSET = rc.SH_OFFSET
# Numba's float() keeps a float32 a float32; np.float64() really widens it.
_F64 = np.float64


@njit(cache=True, inline="always")
def _basis(x, y, z, degree, b, db):
    """Basis values b[k] and their partial derivatives db[k, :] w.r.t. (x, y, z)."""
    for k in range(16):
        b[k] = 0.0
        db[k, 0] = 0.0
        db[k, 1] = 0.0
        db[k, 2] = 0.0
    b[0] = _C0
    if degree >= 1:
        b[1], db[1, 1] = -_C1 * y, -_C1
        b[2], db[2, 2] = _C1 * z, _C1
        b[3], db[3, 0] = -_C1 * x, -_C1
    if degree >= 2:
        b[4], db[4, 0], db[4, 1] = _XY * x * y, _XY * y, _XY * x
        b[5], db[5, 1], db[5, 2] = -_XY * y * z, -_XY * z, -_XY * y
        b[6], db[6, 2] = _ZZ * z * z - _Z0, 2 * _ZZ * z
        b[7], db[7, 0], db[7, 2] = -_XY * x * z, -_XY * z, -_XY * x
        b[8], db[8, 0], db[8, 1] = _XX * (x * x - y * y), 2 * _XX * x, -2 * _XX * y
    if degree >= 3:
        band = _CC0 - _CC1 * z * z
        b[9] = -_A * (3 * x * x * y - y * y * y)
        db[9, 0], db[9, 1] = -_A * 6 * x * y, -_A * (3 * x * x - 3 * y * y)
        b[10] = _B * z * 2 * x * y
        db[10, 0], db[10, 1], db[10, 2] = 2 * _B * z * y, 2 * _B * z * x, 2 * _B * x * y
        b[11] = y * band
        db[11, 1], db[11, 2] = band, -2 * _CC1 * y * z
        b[12] = z * (_D0 * z * z - _D1)
        db[12, 2] = 3 * _D0 * z * z - _D1
        b[13] = x * band
        db[13, 0], db[13, 2] = band, -2 * _CC1 * x * z
        b[14] = _B * z * (x * x - y * y)
        db[14, 0], db[14, 1], db[14, 2] = 2 * _B * z * x, -2 * _B * z * y, _B * (x * x - y * y)
        b[15] = -_A * (x * x * x - 3 * x * y * y)
        db[15, 0], db[15, 1] = -_A * (3 * x * x - 3 * y * y), _A * 6 * x * y


@njit(cache=True)
def sh_forward(sh, means, campos, degree, radii, colors):
    """sh [N,K,3], means [N,3], campos [C,3], radii [C,N,2] -> fills colors [C,N,3]
    (0 for Gaussians a camera dropped: they are never composited)."""
    n_coeffs = (degree + 1) * (degree + 1)
    b = np.empty(16)
    db = np.empty((16, 3))
    for g in range(means.shape[0]):
        for cam in range(campos.shape[0]):
            if radii[cam, g, 0] <= 0 and radii[cam, g, 1] <= 0:
                for ch in range(3):
                    colors[cam, g, ch] = 0
                continue
            dx = means[g, 0] - campos[cam, 0]
            dy = means[g, 1] - campos[cam, 1]
            dz = means[g, 2] - campos[cam, 2]
            inv = 1.0 / math.sqrt(dx * dx + dy * dy + dz * dz)
            _basis(dx * inv, dy * inv, dz * inv, degree, b, db)
            for ch in range(3):
                acc = 0.0
                for k in range(n_coeffs):
                    acc += b[k] * sh[g, k, ch]
                colors[cam, g, ch] = max(acc + _OFFSET, 0.0)


@njit(cache=True)
def sh_backward(sh, means, campos, degree, radii, colors, v_colors, v_sh, v_means, v_campos):
    """VJP of sh_forward: v_colors [C,N,3] -> v_sh [N,K,3], v_means [N,3] (overwritten),
    v_campos [C,N,3] per (camera, Gaussian)."""
    n_coeffs = (degree + 1) * (degree + 1)
    b = np.empty(16)
    db = np.empty((16, 3))
    for g in range(means.shape[0]):
        for k in range(v_sh.shape[1]):
            for ch in range(3):
                v_sh[g, k, ch] = 0
        for j in range(3):
            v_means[g, j] = 0
        for cam in range(campos.shape[0]):
            for j in range(3):
                v_campos[cam, g, j] = 0
            if radii[cam, g, 0] <= 0 and radii[cam, g, 1] <= 0:
                continue
            dx = means[g, 0] - campos[cam, 0]
            dy = means[g, 1] - campos[cam, 1]
            dz = means[g, 2] - campos[cam, 2]
            inv = 1.0 / math.sqrt(dx * dx + dy * dy + dz * dz)
            ux, uy, uz = dx * inv, dy * inv, dz * inv
            _basis(ux, uy, uz, degree, b, db)
            vu0 = 0.0
            vu1 = 0.0
            vu2 = 0.0
            for ch in range(3):
                if colors[cam, g, ch] <= 0:  # clamp_min(., 0): gradient passes where >= 0
                    acc = _OFFSET
                    for k in range(n_coeffs):
                        acc += b[k] * sh[g, k, ch]
                    if acc < 0:
                        continue
                vc = _F64(v_colors[cam, g, ch])
                for k in range(n_coeffs):
                    v_sh[g, k, ch] += b[k] * vc
                    coeff = sh[g, k, ch] * vc
                    vu0 += db[k, 0] * coeff
                    vu1 += db[k, 1] * coeff
                    vu2 += db[k, 2] * coeff
            # d = u / |u|: dL/ddir = (v_u - u (u . v_u)) / |dir|
            dot = ux * vu0 + uy * vu1 + uz * vu2
            gx = (vu0 - ux * dot) * inv
            gy = (vu1 - uy * dot) * inv
            gz = (vu2 - uz * dot) * inv
            v_means[g, 0] += gx
            v_means[g, 1] += gy
            v_means[g, 2] += gz
            v_campos[cam, g, 0] = -gx
            v_campos[cam, g, 1] = -gy
            v_campos[cam, g, 2] = -gz
