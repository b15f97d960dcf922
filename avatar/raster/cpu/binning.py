"""Numba kernels of the CPU rasterizer: tile binning and per-intersection rows.

``bin_tiles`` turns depth-sorted visible Gaussians into one flat list per 16x16 tile (a
stable counting sort: each tile's list stays front to back; O(intersections), serial).
``gather_*`` copy each intersection's Gaussian data into contiguous rows so a tile's loop
streams through memory; ``reduce_to_gaussians`` adds per-row gradients back up per
Gaussian, in row order, so the result does not depend on thread scheduling.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

import splattalk.avatar.raster.conventions as rc

GEOM_COLS = 8  # mean x, mean y, conic a, b, c, opacity, sigma cut, (pad)
# The compositing kernels handle exactly CHANNELS feature channels (a compile-time constant
# the compiler unrolls); callers pad RGB / RGB+depth to it and split wider features.
CHANNELS = 4
# Quick reject before exp(): alpha < ALPHA_MIN  <=>  sigma > ln(opacity / ALPHA_MIN).
# The margin keeps the shortcut conservative against exp()'s last-bit rounding.
_CUT_MARGIN = 1e-3
# Numba's float() keeps a float32 a float32; np.float64() really widens it.
_F64 = np.float64


@njit(cache=True, inline="always")
def _tile_rect(mx, my, rx, ry, tile_size, tiles_x, tiles_y):
    x0 = min(max(0, int(math.floor((mx - rx) / tile_size))), tiles_x)
    x1 = min(max(0, int(math.ceil((mx + rx) / tile_size))), tiles_x)
    y0 = min(max(0, int(math.floor((my - ry) / tile_size))), tiles_y)
    y1 = min(max(0, int(math.ceil((my + ry) / tile_size))), tiles_y)
    return x0, x1, y0, y1


@njit(cache=True)
def bin_tiles(order, means2d, radii, tile_size, tiles_x, tiles_y):
    """order [V] Gaussian ids front to back, means2d [N,2], radii [N,2] ->
    tile_offsets [tiles+1] (tile t owns rows tile_offsets[t]:tile_offsets[t+1]),
    isect_gid [M] (Gaussian id of each row)."""
    n_tiles = tiles_x * tiles_y
    offsets = np.zeros(n_tiles + 1, np.int64)
    for i in range(order.shape[0]):
        g = order[i]
        x0, x1, y0, y1 = _tile_rect(means2d[g, 0], means2d[g, 1], radii[g, 0], radii[g, 1], tile_size, tiles_x, tiles_y)
        for ty in range(y0, y1):
            for tx in range(x0, x1):
                offsets[ty * tiles_x + tx + 1] += 1
    for t in range(n_tiles):
        offsets[t + 1] += offsets[t]
    cursor = offsets[:-1].copy()
    isect_gid = np.empty(offsets[n_tiles], np.int32)
    for i in range(order.shape[0]):
        g = order[i]
        x0, x1, y0, y1 = _tile_rect(means2d[g, 0], means2d[g, 1], radii[g, 0], radii[g, 1], tile_size, tiles_x, tiles_y)
        for ty in range(y0, y1):
            for tx in range(x0, x1):
                t = ty * tiles_x + tx
                isect_gid[cursor[t]] = g
                cursor[t] += 1
    return offsets, isect_gid


@njit(cache=True)
def gather_geometry(isect_gid, means2d, conics, opacities):
    """Per-intersection rows geom [M, GEOM_COLS] float32."""
    m = isect_gid.shape[0]
    geom = np.zeros((m, GEOM_COLS), np.float32)
    for k in range(m):
        g = isect_gid[k]
        op = opacities[g]
        geom[k, 0] = means2d[g, 0]
        geom[k, 1] = means2d[g, 1]
        geom[k, 2] = conics[g, 0]
        geom[k, 3] = conics[g, 1]
        geom[k, 4] = conics[g, 2]
        geom[k, 5] = op
        geom[k, 6] = math.log(max(_F64(op), 1e-30) / rc.ALPHA_MIN) + _CUT_MARGIN
    return geom


@njit(cache=True)
def gather_channels(isect_gid, features, first):
    """Per-intersection rows cols [M, CHANNELS] float32 of features[:, first:first+CHANNELS]
    (zero-padded past the last feature)."""
    m = isect_gid.shape[0]
    n_ch = min(CHANNELS, features.shape[1] - first)
    cols = np.zeros((m, CHANNELS), np.float32)
    for k in range(m):
        g = isect_gid[k]
        for c in range(n_ch):
            cols[k, c] = features[g, first + c]
    return cols


@njit(cache=True)
def reduce_to_gaussians(isect_gid, g_geom, g_cols, v_means2d, v_conics, v_opacities, v_colors):
    """Sum rows per Gaussian, in row order (deterministic). Outputs float64, zeroed."""
    for k in range(isect_gid.shape[0]):
        g = isect_gid[k]
        v_means2d[g, 0] += g_geom[k, 0]
        v_means2d[g, 1] += g_geom[k, 1]
        v_conics[g, 0] += g_geom[k, 2]
        v_conics[g, 1] += g_geom[k, 3]
        v_conics[g, 2] += g_geom[k, 4]
        v_opacities[g] += g_geom[k, 5]
        for c in range(v_colors.shape[1]):
            v_colors[g, c] += g_cols[k, c]
