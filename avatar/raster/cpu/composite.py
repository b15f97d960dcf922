"""Numba kernels of the CPU rasterizer: front-to-back compositing and its backward.

Each tile (16x16 pixels) walks its depth-sorted row list (see :mod:`.binning`)
Gaussian-outer: row k visits only the pixels its ellipse can reach (solved per pixel row,
conservatively), in list order, so every pixel still meets its Gaussians front to back;
per-pixel state lives in small tile-local arrays and a tile stops once all its pixels are
done. The forward stores each pixel's final transmittance and last contributing row: all
the backward needs to walk the list back to front, recovering T_k = T_{k+1} / (1 - a_k)
and accumulating each row's gradient in registers. A tile owns its rows, so tiles run in
parallel without atomics and the result does not depend on the thread count.

The alpha test is evaluated in float32 with exactly the reference's expression in both
passes, so they make the same skip/stop decisions; the backward accumulates in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

import splattalk.avatar.raster.conventions as rc
from splattalk.avatar.raster.cpu.binning import CHANNELS

_F32 = np.float32
# Numba's float() keeps a float32 a float32; np.float64() really widens it.
_F64 = np.float64
_HALF = _F32(0.5)
_ONE = _F32(1.0)
_PIX = _F32(0.5)
_ALPHA_MIN = _F32(rc.ALPHA_MIN)
_ALPHA_MAX = _F32(rc.ALPHA_MAX)
_T_MIN = _F32(rc.T_MIN)
# Tiles differ a lot in cost (a head in the middle, background around): the parallel
# drivers hand them out dynamically in chunks of this many (numba.set_parallel_chunksize).
TILE_CHUNK = 4


@njit(cache=True, inline="always", error_model="numpy")
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
def _ellipse(geom, k):
    """(a, b, det, cut', half_height) of row k for the pixel spans, float64. cut' is the cut
    enlarged by a bound on float32 rounding of sigma: sigma32 differs from sigma by at most
    ~6 ulp of sum(|terms|), and over the ellipse sigma <= cut that sum is <= 4 cut ac / det,
    so a pixel outside the float64 ellipse for cut' has sigma32 > cut: the spans never miss
    a pixel the (reference-identical) float32 test would accept. half_height < 0: empty."""
    a, b, c, cut = _F64(geom[k, 2]), _F64(geom[k, 3]), _F64(geom[k, 4]), _F64(geom[k, 6])
    det = a * c - b * b
    if not (a > 0 and cut > 0 and det > 0):
        return a, b, det, cut, -1.0
    cut = cut + 4e-6 * cut * a * c / det + 1e-6
    return a, b, det, cut, math.sqrt(2.0 * cut * a / det)  # |dy| <= sqrt(2 cut / c')


@njit(cache=True, inline="always")
def _row_span(my, half, y_begin, y_end):
    """Rows [lo, hi] of the tile whose pixel centres lie within half of my."""
    if half < 0:
        return 1, 0
    lo = max(y_begin, int(math.ceil(_F64(my) - 0.5 - half)))
    hi = min(y_end - 1, int(math.floor(_F64(my) - 0.5 + half)))
    return lo, hi


@njit(cache=True, inline="always")
def _col_span(mx, dy, a, b, det, cut, x_begin, x_end):
    """Columns [lo, hi] of a pixel row at offset dy = my - centre whose pixel centres can
    reach the cut: sigma <= cut <=> dx in [(-b dy - root) / a, (-b dy + root) / a]."""
    dy = _F64(dy)
    disc = 2.0 * a * cut - det * dy * dy
    if disc < 0:
        return 1, 0
    root = math.sqrt(disc)
    centre = _F64(mx) - 0.5
    lo = max(x_begin, int(math.ceil(centre - (root - b * dy) / a)))
    hi = min(x_end - 1, int(math.floor(centre + (root + b * dy) / a)))
    return lo, hi


@njit(cache=True, error_model="numpy")
def _forward_tile(
    t, tile_offsets, geom, cols, first, background, width, height, tile_size, tiles_x, out_image, out_t, out_last
):
    """One tile of composite_forward."""
    d = CHANNELS
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
        mx, my, a, b, c = geom[k, 0], geom[k, 1], geom[k, 2], geom[k, 3], geom[k, 4]
        op, cut = geom[k, 5], geom[k, 6]
        ea, eb, edet, ecut, half = _ellipse(geom, k)
        y_lo, y_hi = _row_span(my, half, y_begin, y_end)
        for y in range(y_lo, y_hi + 1):
            dy = my - (_F32(y) + _PIX)
            cdy2 = c * dy * dy
            x_lo, x_hi = _col_span(mx, dy, ea, eb, edet, ecut, x_begin, x_end)
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
            for ch in range(min(d, out_image.shape[2] - first)):
                out_image[y, x, first + ch] = acc[p, ch] + trans[p] * background[first + ch]
            out_t[y, x] = trans[p]
            out_last[y, x] = last[p]


@njit(cache=True, error_model="numpy")
def _backward_tile(
    t,
    tile_offsets,
    geom,
    cols,
    first,
    background,
    width,
    height,
    tile_size,
    tiles_x,
    out_t,
    out_last,
    v_image,
    v_alpha,
    g_geom,
    g_cols,
):
    """One tile of composite_backward. The CHANNELS (= 4) colour channels are spelled out
    as scalars so the compiler keeps them in registers."""
    start = tile_offsets[t]
    y_begin = (t // tiles_x) * tile_size
    x_begin = (t % tiles_x) * tile_size
    y_end = min(y_begin + tile_size, height)
    x_end = min(x_begin + tile_size, width)
    tw = x_end - x_begin
    n_pix = (y_end - y_begin) * tw
    # per pixel: T (walking back), dL/dT_final * T_final, dL/drgb (4), sum behind c a T (4)
    state = np.zeros((n_pix, 10))
    last = np.empty(n_pix, np.int32)
    max_last = start - 1
    for y in range(y_begin, y_end):
        for x in range(x_begin, x_end):
            p = (y - y_begin) * tw + (x - x_begin)
            last[p] = out_last[y, x]
            max_last = max(max_last, last[p])
            t_final = _F64(out_t[y, x])
            bg_dot = 0.0
            for ch in range(min(CHANNELS, v_image.shape[2] - first)):
                state[p, 2 + ch] = v_image[y, x, first + ch]
                bg_dot += background[first + ch] * v_image[y, x, first + ch]
            v_a = _F64(v_alpha[y, x]) if first == 0 else 0.0  # alpha's gradient enters once
            state[p, 0] = t_final
            state[p, 1] = (v_a - bg_dot) * t_final
    for k in range(max_last, start - 1, -1):
        gmx = gmy = ga = gb = gc = gop = 0.0
        g0 = g1 = g2 = g3 = 0.0
        c0, c1, c2, c3 = _F64(cols[k, 0]), _F64(cols[k, 1]), _F64(cols[k, 2]), _F64(cols[k, 3])
        mx, my, a, b, c = geom[k, 0], geom[k, 1], geom[k, 2], geom[k, 3], geom[k, 4]
        op, cut = geom[k, 5], geom[k, 6]
        ca, cb, cc, fop = _F64(a), _F64(b), _F64(c), _F64(op)
        ea, eb, edet, ecut, half = _ellipse(geom, k)
        y_lo, y_hi = _row_span(my, half, y_begin, y_end)
        for y in range(y_lo, y_hi + 1):
            dy = my - (_F32(y) + _PIX)
            cdy2 = c * dy * dy
            fdy = _F64(dy)
            x_lo, x_hi = _col_span(mx, dy, ea, eb, edet, ecut, x_begin, x_end)
            for x in range(x_lo, x_hi + 1):
                p = (y - y_begin) * tw + (x - x_begin)
                if k > last[p]:
                    continue
                dx = mx - (_F32(x) + _PIX)
                alpha, vis = _alpha(dx, dy, cdy2, a, b, op, cut)
                if alpha == 0:
                    continue
                fa = _F64(alpha)
                ra = 1.0 / (1.0 - fa)
                tk = state[p, 0] * ra  # transmittance in front of row k
                state[p, 0] = tk
                w = fa * tk
                v0, v1, v2, v3 = state[p, 2], state[p, 3], state[p, 4], state[p, 5]
                b0, b1, b2, b3 = state[p, 6], state[p, 7], state[p, 8], state[p, 9]
                g0 += w * v0
                g1 += w * v1
                g2 += w * v2
                g3 += w * v3
                v_a = (
                    state[p, 1] * ra
                    + (c0 * tk - b0 * ra) * v0
                    + (c1 * tk - b1 * ra) * v1
                    + (c2 * tk - b2 * ra) * v2
                    + (c3 * tk - b3 * ra) * v3
                )
                state[p, 6] = b0 + c0 * w
                state[p, 7] = b1 + c1 * w
                state[p, 8] = b2 + c2 * w
                state[p, 9] = b3 + c3 * w
                if op * vis <= _ALPHA_MAX:  # past the clamp alpha is constant
                    fvis = _F64(vis)
                    v_sigma = -fop * fvis * v_a
                    fdx = _F64(dx)
                    gmx += v_sigma * (ca * fdx + cb * fdy)
                    gmy += v_sigma * (cb * fdx + cc * fdy)
                    ga += v_sigma * fdx * fdx
                    gb += v_sigma * fdx * fdy
                    gc += v_sigma * fdy * fdy
                    gop += fvis * v_a
        g_geom[k, 0] = gmx
        g_geom[k, 1] = gmy
        g_geom[k, 2] = 0.5 * ga
        g_geom[k, 3] = gb
        g_geom[k, 4] = 0.5 * gc
        g_geom[k, 5] = gop
        g_cols[k, 0] = g0
        g_cols[k, 1] = g1
        g_cols[k, 2] = g2
        g_cols[k, 3] = g3


@njit(parallel=True, cache=True)
def _forward_parallel(
    tile_offsets, geom, cols, first, background, width, height, tile_size, tiles_x, out_image, out_t, out_last
):
    for t in prange(tile_offsets.shape[0] - 1):
        _forward_tile(
            t,
            tile_offsets,
            geom,
            cols,
            first,
            background,
            width,
            height,
            tile_size,
            tiles_x,
            out_image,
            out_t,
            out_last,
        )


@njit(cache=True)
def _forward_serial(
    tile_offsets, geom, cols, first, background, width, height, tile_size, tiles_x, out_image, out_t, out_last
):
    for t in range(tile_offsets.shape[0] - 1):
        _forward_tile(
            t,
            tile_offsets,
            geom,
            cols,
            first,
            background,
            width,
            height,
            tile_size,
            tiles_x,
            out_image,
            out_t,
            out_last,
        )


@njit(parallel=True, cache=True)
def _backward_parallel(
    tile_offsets,
    geom,
    cols,
    first,
    background,
    width,
    height,
    tile_size,
    tiles_x,
    out_t,
    out_last,
    v_image,
    v_alpha,
    g_geom,
    g_cols,
):
    for t in prange(tile_offsets.shape[0] - 1):
        _backward_tile(
            t,
            tile_offsets,
            geom,
            cols,
            first,
            background,
            width,
            height,
            tile_size,
            tiles_x,
            out_t,
            out_last,
            v_image,
            v_alpha,
            g_geom,
            g_cols,
        )


@njit(cache=True)
def _backward_serial(
    tile_offsets,
    geom,
    cols,
    first,
    background,
    width,
    height,
    tile_size,
    tiles_x,
    out_t,
    out_last,
    v_image,
    v_alpha,
    g_geom,
    g_cols,
):
    for t in range(tile_offsets.shape[0] - 1):
        _backward_tile(
            t,
            tile_offsets,
            geom,
            cols,
            first,
            background,
            width,
            height,
            tile_size,
            tiles_x,
            out_t,
            out_last,
            v_image,
            v_alpha,
            g_geom,
            g_cols,
        )


def composite_forward(parallel, *args):
    """(tile_offsets, geom [M,8], cols [M,CHANNELS], first, background [D], width, height,
    tile_size, tiles_x, out_image [H,W,D], out_t [H,W], out_last [H,W]): composites the
    channels first:first+CHANNELS (cols holds them, zero-padded) into out_image (background
    included) and fills the final transmittance and the last contributing row (tile start
    - 1 where none)."""
    (_forward_parallel if parallel else _forward_serial)(*args)


def composite_backward(parallel, *args):
    """(tile_offsets, geom, cols, first, background, width, height, tile_size, tiles_x,
    out_t, out_last, v_image [H,W,D], v_alpha [H,W], g_geom [M,6], g_cols [M,CHANNELS]):
    writes each row's gradient (d mean x, y, conic a, b, c, opacity; d colour), float64,
    for channels first:first+CHANNELS; dL/dalpha enters with the first chunk only."""
    (_backward_parallel if parallel else _backward_serial)(*args)
