"""From motion rows to what viser's splat renderer takes: centres, covariances, colours, opacities.

The browser rasterizes; the server only poses the Gaussians (head model LBS +
triangle binding, numba fast path) and packs them. viser stores covariances
as float16: a head in metres has covariances around 1e-6 m² — float16
subnormals, most precision gone — so everything is sent in scene units of
``scene_scale`` per metre (×10 by default: covariances ~1e-4).
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
import torch

from splattalk.avatar.model import Avatar, animate, posed_vertices
from splattalk.head.params import HeadParams


@numba.njit(cache=True, inline="always")
def _f16_bits(value):
    """float32 → IEEE half bits, round to nearest even (as numpy's astype(float16))."""
    x = np.uint32(np.float32(value).view(np.uint32))
    sign = (x >> np.uint32(16)) & np.uint32(0x8000)
    x &= np.uint32(0x7FFFFFFF)
    if x >= np.uint32(0x7F800000):  # inf, nan
        h = np.uint32(0x7C00) | (np.uint32(0x200) if x > np.uint32(0x7F800000) else np.uint32(0))
    elif x >= np.uint32(0x477FF000):  # rounds past 65504
        h = np.uint32(0x7C00)
    elif x < np.uint32(0x38800000):  # below 2^-14: half subnormal (or zero)
        if x < np.uint32(0x33000000):
            h = np.uint32(0)
        else:
            e = x >> np.uint32(23)
            m = (x & np.uint32(0x7FFFFF)) | np.uint32(0x800000)
            shift = np.uint32(126) - e
            h = m >> shift
            rem = m & ((np.uint32(1) << shift) - np.uint32(1))
            half = np.uint32(1) << (shift - np.uint32(1))
            if rem > half or (rem == half and (h & np.uint32(1))):
                h += np.uint32(1)
    else:
        h = (x - np.uint32(0x38000000)) >> np.uint32(13)
        rem = x & np.uint32(0x1FFF)
        if rem > np.uint32(0x1000) or (rem == np.uint32(0x1000) and (h & np.uint32(1))):
            h += np.uint32(1)
    return h | sign


@numba.njit(cache=True)
def _pack(means, quats, scales, scale, rgba, out):
    for i in range(means.shape[0]):
        for k in range(3):
            out[i, k] = np.float32(means[i, k] * scale).view(np.uint32)
        out[i, 3] = 0
        w, x, y, z = quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3]
        r00, r01, r02 = 1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)
        r10, r11, r12 = 2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)
        r20, r21, r22 = 2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)
        a, b, c = scales[i, 0] * scale, scales[i, 1] * scale, scales[i, 2] * scale
        a, b, c = a * a, b * b, c * c
        xx = r00 * r00 * a + r01 * r01 * b + r02 * r02 * c
        xy = r00 * r10 * a + r01 * r11 * b + r02 * r12 * c
        xz = r00 * r20 * a + r01 * r21 * b + r02 * r22 * c
        yy = r10 * r10 * a + r11 * r11 * b + r12 * r12 * c
        yz = r10 * r20 * a + r11 * r21 * b + r12 * r22 * c
        zz = r20 * r20 * a + r21 * r21 * b + r22 * r22 * c
        # two halves per word, little-endian: the first of each pair in the low bits
        out[i, 4] = _f16_bits(xx) | (_f16_bits(xy) << np.uint32(16))
        out[i, 5] = _f16_bits(xz) | (_f16_bits(yy) << np.uint32(16))
        out[i, 6] = _f16_bits(yz) | (_f16_bits(zz) << np.uint32(16))
        out[i, 7] = rgba[i]


def pack_posed(
    means: np.ndarray,
    quats: np.ndarray,
    scales: np.ndarray,
    scale: float,
    rgba: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Posed Gaussians (metres: means ``[N, 3]``, unit quats ``[N, 4]`` wxyz, scales ``[N, 3]``)
    → viser's buffer ``[N, 8]``.

    One pass: centres and R S² Rᵀ times ``scale`` (²) straight into viser's layout, the
    covariance rounded to float16 exactly as numpy's ``astype(np.float16)`` does.
    """
    n = means.shape[0]
    if out is None:
        out = np.empty((n, 8), np.uint32)
    f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    _pack(f32(means), f32(quats), f32(scales), np.float32(scale), np.ascontiguousarray(rgba, np.uint32), out)
    return out


@numba.njit(cache=True)
def _covariance_triu(quats, scales, scale, out):
    for i in range(quats.shape[0]):
        w, x, y, z = quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3]
        r00, r01, r02 = 1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)
        r10, r11, r12 = 2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)
        r20, r21, r22 = 2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)
        a, b, c = scales[i, 0] * scale, scales[i, 1] * scale, scales[i, 2] * scale
        a, b, c = a * a, b * b, c * c
        out[i, 0] = r00 * r00 * a + r01 * r01 * b + r02 * r02 * c
        out[i, 1] = r00 * r10 * a + r01 * r11 * b + r02 * r12 * c
        out[i, 2] = r00 * r20 * a + r01 * r21 * b + r02 * r22 * c
        out[i, 3] = r10 * r10 * a + r11 * r11 * b + r12 * r12 * c
        out[i, 4] = r10 * r20 * a + r11 * r21 * b + r12 * r22 * c
        out[i, 5] = r20 * r20 * a + r21 * r21 * b + r22 * r22 * c


TRIU = (0, 1, 2, 4, 5, 8)
"""Upper-triangle entries of a flattened 3×3 covariance, in viser's order (xx xy xz yy yz zz)."""


def covariance_triu(quats: np.ndarray, scales: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Upper triangles ``[N, 6]`` of R S² Rᵀ (times ``scale²``) for unit quats ``[N, 4]`` (wxyz), scales ``[N, 3]``."""
    out = np.empty((quats.shape[0], 6), np.float32)
    _covariance_triu(
        np.ascontiguousarray(quats, np.float32), np.ascontiguousarray(scales, np.float32), np.float32(scale), out
    )
    return out


def triu_to_full(triu: np.ndarray) -> np.ndarray:
    """``[N, 6]`` upper triangles → symmetric ``[N, 3, 3]``."""
    full = np.empty((triu.shape[0], 9), triu.dtype)
    for k, (i, j) in enumerate(((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))):
        full[:, 3 * i + j] = triu[:, k]
        full[:, 3 * j + i] = triu[:, k]
    return full.reshape(-1, 3, 3)


def rgba_words(rgbs: np.ndarray, opacities: np.ndarray) -> np.ndarray:
    """Colours ``[N, 3]`` and opacities ``[N, 1]`` in [0, 1] → one uint32 RGBA word each ``[N]`` (viser's packing)."""
    rgba = np.concatenate([rgbs, opacities], axis=1)
    return np.ascontiguousarray(np.clip(rgba * 255.0, 0, 255).astype(np.uint8)).view(np.uint32)[:, 0]


class SplatPoser:
    """Poses one avatar for one viewer session (it owns the fast poser's scratch buffers: one per thread)."""

    def __init__(self, avatar: Avatar, base: HeadParams | None = None, scene_scale: float = 10.0):
        self.avatar = dataclasses.replace(avatar, _poser=None, _poser_key=())
        self.base = base
        self.scene_scale = float(scene_scale)
        g = avatar.gaussians
        rgb = (0.28209479177387814 * g.sh[:, 0, :].detach() + 0.5).clamp(0, 1)
        self.rgbs = rgb.numpy().astype(np.float32)
        """[N, 3] colours in [0, 1] (degree-0 SH: the browser renders view-independent colour)."""
        self.opacities = torch.sigmoid(g.opacity_logits.detach()).numpy().astype(np.float32)[:, None]
        """[N, 1]"""
        self.rgba = rgba_words(self.rgbs, self.opacities)
        """[N] uint32: colour and opacity as viser packs them"""
        self.motion_dim = avatar.head.num_expr + 6

    @property
    def num(self) -> int:
        return self.rgbs.shape[0]

    def params(self, motion: np.ndarray) -> HeadParams:
        """Motion rows ``[T, E + 6]`` → head parameters on top of the tracked base pose."""
        return HeadParams.from_motion(motion, self.base)

    def pose(self, motion_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One motion row ``[E + 6]`` → centres ``[N, 3]`` and covariance triangles ``[N, 6]``, float32, scene units."""
        with torch.no_grad():
            g = animate(self.avatar, self.params(np.asarray(motion_row, np.float32)[None]))
        s = self.scene_scale
        centers = g.means[0].numpy() * s
        return centers.astype(np.float32, copy=False), covariance_triu(g.quats[0].numpy(), g.scales[0].numpy(), s)

    def buffer(
        self, motion_row: np.ndarray, out: np.ndarray | None = None, extras: np.ndarray | None = None
    ) -> np.ndarray:
        """One motion row → viser's packed splat buffer ``[N, 8]`` uint32
        (``extras`` [12]: a driven clip's neck, translation, eyes)."""
        params = self.params(np.asarray(motion_row, np.float32)[None])
        if extras is not None:
            params.neck, params.transl, params.eyes = extras[None, 0:3], extras[None, 3:6], extras[None, 6:12]
        with torch.no_grad():
            g = animate(self.avatar, params)
        return pack_posed(g.means[0].numpy(), g.quats[0].numpy(), g.scales[0].numpy(), self.scene_scale, self.rgba, out)

    def rest_vertices(self) -> np.ndarray:
        """Head-mesh vertices ``[V, 3]`` (metres) at the base pose, for framing the camera."""
        with torch.no_grad():
            return posed_vertices(self.avatar, self.params(np.zeros((1, self.motion_dim), np.float32)))[0].numpy()
