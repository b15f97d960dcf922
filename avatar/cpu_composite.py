"""Numba kernels of the CPU rasterizer: tile binning and front-to-back compositing.

Pipeline for one camera (driven by :mod:`raster_cpu`):

1. ``bin_tiles``: visible Gaussians, already sorted by depth, are counted into the 16x16
   tiles their screen box touches, then written into one flat list per tile (a stable
   counting sort, so each tile's list stays front to back). O(intersections), serial.
2. ``gather``: per intersection, the Gaussian's 2D mean, conic, opacity, colour are copied
   into contiguous rows so a tile's inner loop streams through memory.
3. ``composite_forward``: ``prange`` over tiles; per pixel, walk the tile's list until the
   transmittance would drop to ``T_MIN``. Stores the final transmittance and the index of the
   last contributing intersection per pixel: that is all the backward needs.
4. ``composite_backward``: ``prange`` over tiles; per pixel, walk back from the last
   contributor, recovering each T_i = T_{i+1} / (1 - alpha_i), and accumulate gradients
   into the intersection's own row (a tile owns its rows: no races, no atomics).
5. ``reduce_to_gaussians``: add the rows up per Gaussian in a fixed order: deterministic.

The per-pixel alpha test is evaluated in float32 with exactly the same expression in the
forward and backward (and in :mod:`raster_reference`), so both passes make the same
skip/stop decisions; the backward accumulates in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import raster_conventions as rc

_F32 = np.float32
_HALF = _F32(0.5)
_ONE = _F32(1.0)
_PIX = _F32(0.5)
_ALPHA_MIN = _F32(rc.ALPHA_MIN)
_ALPHA_MAX = _F32(rc.ALPHA_MAX)
_T_MIN = _F32(rc.T_MIN)
# Quick reject before exp(): alpha < ALPHA_MIN  <=>  sigma > ln(opacity / ALPHA_MIN).
# The margin keeps the shortcut conservative against exp()'s last-bit rounding.
_CUT_MARGIN = 1e-3
# Tiles differ a lot in cost (a head in the middle, background around): callers hand them
# out dynamically in chunks of this many (numba.set_parallel_chunksize) rather than one
# contiguous share per thread.
TILE_CHUNK = 4
GEOM_COLS = 8  # mean x, mean y, conic a, b, c, opacity, sigma cut, (pad)
# The kernels composite exactly CHANNELS feature channels (a compile-time constant the
# compiler unrolls); callers pad RGB / RGB+depth to it and split wider features in chunks.
CHANNELS = 4


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
        x0, x1, y0, y1 = _tile_rect(
            means2d[g, 0], means2d[g, 1], radii[g, 0], radii[g, 1], tile_size, tiles_x, tiles_y
        )
        for ty in range(y0, y1):
            for tx in range(x0, x1):
                offsets[ty * tiles_x + tx + 1] += 1
    for t in range(n_tiles):
        offsets[t + 1] += offsets[t]
    cursor = offsets[:-1].copy()
    isect_gid = np.empty(offsets[n_tiles], np.int32)
    for i in range(order.shape[0]):
        g = order[i]
        x0, x1, y0, y1 = _tile_rect(
            means2d[g, 0], means2d[g, 1], radii[g, 0], radii[g, 1], tile_size, tiles_x, tiles_y
        )
        for ty in range(y0, y1):
            for tx in range(x0, x1):
                t = ty * tiles_x + tx
                isect_gid[cursor[t]] = g
                cursor[t] += 1
    return offsets, isect_gid


@njit(parallel=True, cache=True)
def gather_geometry(isect_gid, means2d, conics, opacities):
    """Per-intersection rows geom [M, GEOM_COLS] float32."""
    m = isect_gid.shape[0]
    geom = np.zeros((m, GEOM_COLS), np.float32)
    for k in prange(m):
        g = isect_gid[k]
        op = opacities[g]
        geom[k, 0] = means2d[g, 0]
        geom[k, 1] = means2d[g, 1]
        geom[k, 2] = conics[g, 0]
        geom[k, 3] = conics[g, 1]
        geom[k, 4] = conics[g, 2]
        geom[k, 5] = op
        geom[k, 6] = math.log(max(float(op), 1e-30) / rc.ALPHA_MIN) + _CUT_MARGIN
    return geom


@njit(parallel=True, cache=True)
def gather_channels(isect_gid, features, first):
    """Per-intersection rows cols [M, CHANNELS] float32 of features[:, first:first+CHANNELS]
    (zero-padded past the last feature)."""
    m = isect_gid.shape[0]
    n_ch = min(CHANNELS, features.shape[1] - first)
    cols = np.zeros((m, CHANNELS), np.float32)
    for k in prange(m):
        g = isect_gid[k]
        for c in range(n_ch):
            cols[k, c] = features[g, first + c]
    return cols


@njit(cache=True, inline="always")
def _alpha(dx, dy, cdy2, a, b, op, cut):
    """(alpha, vis) at offset (dx, dy) = mean - pixel centre, cdy2 = c * dy * dy; alpha = 0
    when the Gaussian is skipped there. Same float32 expression as the reference."""
    sigma = _HALF * (a * dx * dx + cdy2) + b * dx * dy
    if sigma < 0 or sigma > cut:
        return _F32(0), _F32(0)
    vis = np.exp(-sigma)
    alpha = min(_ALPHA_MAX, op * vis)
    if alpha < _ALPHA_MIN:
        return _F32(0), vis
    return alpha, vis


@njit(cache=True, inline="always")
def _span_cut(a, b, c, cut):
    """The cut, enlarged by a bound on float32 rounding of sigma, for the pixel spans.

    sigma32 differs from sigma by at most ~6 ulp of sum(|terms|), and over the ellipse
    sigma <= cut that sum is <= 4 cut ac / det: a pixel outside the float64 ellipse for
    this enlarged cut has sigma32 > cut, so the spans below never miss a pixel that the
    (reference-identical) float32 test would accept."""
    det = a * c - b * b
    return cut + 4e-6 * cut * a * c / det + 1e-6, det


@njit(cache=True, inline="always")
def _row_span(geom, k, y_begin, y_end):
    """Rows [lo, hi] of the tile (y_begin..y_end-1) whose pixel centres can reach row k's
    cut: |dy| <= sqrt(2 cut a / det) (the conic's Schur complement)."""
    a, b, c, cut = float(geom[k, 2]), float(geom[k, 3]), float(geom[k, 4]), float(geom[k, 6])
    if not (a > 0 and cut > 0 and a * c - b * b > 0):
        return 1, 0
    cut, det = _span_cut(a, b, c, cut)
    half = math.sqrt(2.0 * cut * a / det)
    my = float(geom[k, 1]) - 0.5
    lo = max(y_begin, int(math.ceil(my - half)))
    hi = min(y_end - 1, int(math.floor(my + half)))
    return lo, hi


@njit(cache=True, inline="always")
def _col_span(geom, k, y, x_begin, x_end):
    """Columns [lo, hi] of row y whose pixel centres can reach row k's cut."""
    a, b, c, cut = float(geom[k, 2]), float(geom[k, 3]), float(geom[k, 4]), float(geom[k, 6])
    cut, det = _span_cut(a, b, c, cut)
    dy = float(geom[k, 1]) - (y + 0.5)
    disc = 2.0 * a * cut - det * dy * dy
    if disc < 0:
        return 1, 0
    root = math.sqrt(disc)
    mx = float(geom[k, 0]) - 0.5
    # sigma <= cut  <=>  dx in [(-b dy - root) / a, (-b dy + root) / a],  x = mx - dx
    lo = max(x_begin, int(math.ceil(mx - (-b * dy + root) / a)))
    hi = min(x_end - 1, int(math.floor(mx - (-b * dy - root) / a)))
    return lo, hi


@njit(parallel=True, cache=True)
def composite_forward(tile_offsets, geom, cols, background, width, height, tile_size, tiles_x,
                      out_image, out_t, out_last):  # fmt: skip
    """Fills out_image [H,W,D] (background included), out_t [H,W] final transmittance,
    out_last [H,W] last contributing row (or tile start - 1 when none).

    Loops Gaussian-outer within a tile: each row of the tile's list visits only the pixels
    its ellipse can reach, in list (depth) order, so every pixel still sees its Gaussians
    front to back; per-pixel state lives in small tile-local arrays."""
    d = CHANNELS
    n_tiles = tile_offsets.shape[0] - 1
    for t in prange(n_tiles):
        start, end = tile_offsets[t], tile_offsets[t + 1]
        y_begin = (t // tiles_x) * tile_size
        x_begin = (t % tiles_x) * tile_size
        y_end = min(y_begin + tile_size, height)
        x_end = min(x_begin + tile_size, width)
        tw = x_end - x_begin
        n_pix = (y_end - y_begin) * tw
        trans = np.ones(n_pix, np.float32)
        acc = np.zeros((n_pix, d), np.float32)
        last = np.full(n_pix, start - 1, np.int32)
        done = np.zeros(n_pix, np.bool_)
        n_done = 0
        for k in range(start, end):
            if n_done == n_pix:
                break
            mx, my, a, b, c, op, cut = geom[k, 0], geom[k, 1], geom[k, 2], geom[k, 3], geom[k, 4], geom[k, 5], geom[k, 6]
            y_lo, y_hi = _row_span(geom, k, y_begin, y_end)
            for y in range(y_lo, y_hi + 1):
                dy = my - (_F32(y) + _PIX)
                cdy2 = c * dy * dy
                x_lo, x_hi = _col_span(geom, k, y, x_begin, x_end)
                for x in range(x_lo, x_hi + 1):
                    p = (y - y_begin) * tw + (x - x_begin)
                    if done[p]:
                        continue
                    alpha, _ = _alpha(mx - (_F32(x) + _PIX), dy, cdy2, a, b, op, cut)
                    if alpha == 0:
                        continue
                    next_t = trans[p] * (_ONE - alpha)
                    if next_t <= _T_MIN:
                        done[p] = True
                        n_done += 1
                        continue
                    weight = alpha * trans[p]
                    for ch in range(d):
                        acc[p, ch] += cols[k, ch] * weight
                    trans[p] = next_t
                    last[p] = k
        for y in range(y_begin, y_end):
            for x in range(x_begin, x_end):
                p = (y - y_begin) * tw + (x - x_begin)
                for c in range(d):
                    out_image[y, x, c] = acc[p, c] + trans[p] * background[c]
                out_t[y, x] = trans[p]
                out_last[y, x] = last[p]


@njit(parallel=True, cache=True)
def composite_backward(tile_offsets, geom, cols, background, width, height, tile_size, tiles_x,
                       out_t, out_last, v_image, v_alpha, g_geom, g_cols):  # fmt: skip
    """VJP of composite_forward. v_image [H,W,D], v_alpha [H,W] -> per row k gradients
    g_geom [M,6] (d mean x, y, conic a, b, c, opacity) and g_cols [M,D] (float64).

    Walks each tile's list back to front from its latest contributor; a pixel takes part
    for rows k <= its last contributor, recovering T_k = T_{k+1} / (1 - alpha_k)."""
    d = CHANNELS
    n_tiles = tile_offsets.shape[0] - 1
    for t in prange(n_tiles):
        start = tile_offsets[t]
        y_begin = (t // tiles_x) * tile_size
        x_begin = (t % tiles_x) * tile_size
        y_end = min(y_begin + tile_size, height)
        x_end = min(x_begin + tile_size, width)
        tw = x_end - x_begin
        n_pix = (y_end - y_begin) * tw
        trans = np.empty(n_pix)
        v_final = np.empty(n_pix)  # dL/dT_final (from alpha = 1 - T and the background)
        t_final = np.empty(n_pix)
        last = np.empty(n_pix, np.int32)
        vrgb = np.empty((n_pix, d))
        buf = np.zeros((n_pix, d))  # sum over rows behind: c_j alpha_j T_j
        max_last = start - 1
        for y in range(y_begin, y_end):
            for x in range(x_begin, x_end):
                p = (y - y_begin) * tw + (x - x_begin)
                last[p] = out_last[y, x]
                max_last = max(max_last, last[p])
                t_final[p] = out_t[y, x]
                trans[p] = t_final[p]
                bg_dot = 0.0
                for c in range(d):
                    vrgb[p, c] = v_image[y, x, c]
                    bg_dot += background[c] * vrgb[p, c]
                v_final[p] = (float(v_alpha[y, x]) - bg_dot) * t_final[p]
        g_col = np.empty(d)
        for k in range(max_last, start - 1, -1):
            gmx = gmy = ga = gb = gc = gop = 0.0
            for ch in range(d):
                g_col[ch] = 0.0
            mx, my, a, b, c, op, cut = geom[k, 0], geom[k, 1], geom[k, 2], geom[k, 3], geom[k, 4], geom[k, 5], geom[k, 6]
            ca, cb, cc = float(a), float(b), float(c)
            y_lo, y_hi = _row_span(geom, k, y_begin, y_end)
            for y in range(y_lo, y_hi + 1):
                dy = my - (_F32(y) + _PIX)
                cdy2 = c * dy * dy
                x_lo, x_hi = _col_span(geom, k, y, x_begin, x_end)
                for x in range(x_lo, x_hi + 1):
                    p = (y - y_begin) * tw + (x - x_begin)
                    if k > last[p]:
                        continue
                    dx = mx - (_F32(x) + _PIX)
                    alpha, vis = _alpha(dx, dy, cdy2, a, b, op, cut)
                    if alpha == 0:
                        continue
                    ra = 1.0 / (1.0 - float(alpha))
                    tk = trans[p] * ra  # transmittance in front of row k
                    trans[p] = tk
                    weight = float(alpha) * tk
                    v_a = v_final[p] * ra
                    for ch in range(d):
                        g_col[ch] += weight * vrgb[p, ch]
                        v_a += (cols[k, ch] * tk - buf[p, ch] * ra) * vrgb[p, ch]
                        buf[p, ch] += cols[k, ch] * weight
                    if op * vis <= _ALPHA_MAX:  # past the clamp alpha is constant
                        v_sigma = -float(op) * float(vis) * v_a
                        fdx, fdy = float(dx), float(dy)
                        gmx += v_sigma * (ca * fdx + cb * fdy)
                        gmy += v_sigma * (cb * fdx + cc * fdy)
                        ga += 0.5 * v_sigma * fdx * fdx
                        gb += v_sigma * fdx * fdy
                        gc += 0.5 * v_sigma * fdy * fdy
                        gop += float(vis) * v_a
            g_geom[k, 0] = gmx
            g_geom[k, 1] = gmy
            g_geom[k, 2] = ga
            g_geom[k, 3] = gb
            g_geom[k, 4] = gc
            g_geom[k, 5] = gop
            for ch in range(d):
                g_cols[k, ch] = g_col[ch]


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
