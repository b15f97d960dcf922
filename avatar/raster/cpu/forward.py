"""Numba kernels of the CPU rasterizer: a forward-only compositor for inference (export, viewer).

:func:`.composite.composite_forward` keeps what its backward needs (each pixel's last
contributing row, four padded channels) and walks each Gaussian's exact pixel spans with
branches per pixel (done? inside the cut? alpha big enough? the exponential as a libm call);
on real avatars that costs ~10 ns per visited pixel, mostly mispredicted branches. Here a
Gaussian is blended into whole 16-pixel tile rows in one branch-free float32 loop that the
compiler turns into SIMD: the exponential is a polynomial (below), every decision a select,
and a pixel that is done carries ``live = 0`` instead of a branch. Rows and tiles whose pixels
are all done are skipped (early termination), and nothing is kept for a backward pass.

The decisions are the reference's (:mod:`..conventions`) on the same float32 expressions;
only the exponential differs from libm's ``expf``, by at most a few ulp, so renders agree
with :mod:`.composite` to float rounding (``tests/avatar/raster/test_forward.py`` bounds it).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

import splattalk.avatar.raster.conventions as rc
from splattalk.avatar.raster.cpu.composite import _ellipse, _row_span

_F32 = np.float32
_HALF = _F32(0.5)
_ONE = _F32(1.0)
_ZERO = _F32(0.0)
_PIX = _F32(0.5)
_ALPHA_MIN = _F32(rc.ALPHA_MIN)
_ALPHA_MAX = _F32(rc.ALPHA_MAX)
_T_MIN = _F32(rc.T_MIN)
# exp(-s) = 2^-k exp(-(s - k ln 2)), k = round(s / ln 2); ln 2 split in two (Cody-Waite) so the
# reduced argument keeps float32 precision; a degree-7 Taylor polynomial on [-ln2/2, ln2/2]
# is then within a few ulp of the true value.
_LOG2E = _F32(1.4426950408889634)
_LN2_HI = _F32(0.693359375)
_LN2_LO = _F32(-2.12194440e-4)
_P2 = _F32(1.0 / 2.0)
_P3 = _F32(1.0 / 6.0)
_P4 = _F32(1.0 / 24.0)
_P5 = _F32(1.0 / 120.0)
_P6 = _F32(1.0 / 720.0)
_P7 = _F32(1.0 / 5040.0)
TILE = rc.TILE_SIZE


@njit(cache=True, inline="always", error_model="numpy")
def _blend_row(mx, dy, cdy2, a, b, op, cut, c0, c1, c2, x_begin, r, trans, live, acc_r, acc_g, acc_b):
    """Blend one Gaussian into row ``r`` of a tile's [TILE, TILE] state; returns how many of
    the row's pixels are still open. Same decisions as the reference: skip where sigma < 0,
    sigma > cut or alpha < ALPHA_MIN; a pixel closes (live = 0) at the Gaussian that would take
    its transmittance to T_MIN or below, which adds nothing. Written for the vectoriser: a
    fixed trip count of 16, float32 only, plain selects (numba's min/max test for NaN; int
    conversions, table lookups and 8-wide loops, which get unrolled, all kept it scalar)."""
    for j in range(TILE):
        dx = mx - (_F32(x_begin + j) + _PIX)
        sigma = _HALF * (a * dx * dx + cdy2) + b * dx * dy
        s = sigma if sigma > _ZERO else _ZERO
        s = s if s < cut else cut
        k = np.floor(s * _LOG2E + _HALF)
        q = k * _LN2_HI - s + k * _LN2_LO  # -(s - k ln 2), in [-ln2/2, ln2/2]
        e = _ONE + q * (_ONE + q * (_P2 + q * (_P3 + q * (_P4 + q * (_P5 + q * (_P6 + q * _P7))))))
        # times 2^-k (0 <= k <= 15 as s <= cut < 11), exactly, by the binary digits of k
        big = k >= _F32(8)
        scale = _F32(2.0**-8) if big else _ONE
        k = k - _F32(8) if big else k
        big = k >= _F32(4)
        scale = scale * _F32(2.0**-4) if big else scale
        k = k - _F32(4) if big else k
        big = k >= _F32(2)
        scale = scale * _F32(2.0**-2) if big else scale
        k = k - _F32(2) if big else k
        scale = scale * _HALF if k >= _ONE else scale
        alpha = op * (e * scale)
        alpha = alpha if alpha < _ALPHA_MAX else _ALPHA_MAX
        open_ = live[r, j]
        hit = (sigma >= _ZERO) & (sigma <= cut) & (alpha >= _ALPHA_MIN) & (open_ > _ZERO)
        tp = trans[r, j]
        next_t = tp * (_ONE - alpha)
        add = hit & (next_t > _T_MIN)
        w = alpha * tp if add else _ZERO
        acc_r[r, j] += c0 * w
        acc_g[r, j] += c1 * w
        acc_b[r, j] += c2 * w
        trans[r, j] = next_t if add else tp
        live[r, j] = _ZERO if hit & (next_t <= _T_MIN) else open_
    n_open = 0
    for j in range(TILE):
        n_open += live[r, j] > _ZERO
    return n_open


@njit(cache=True, error_model="numpy")
def _tile(t, tile_offsets, geom, cols, background, width, height, tiles_x, out_image, out_alpha):
    y_begin = (t // tiles_x) * TILE
    x_begin = (t % tiles_x) * TILE
    y_end = min(y_begin + TILE, height)
    x_end = min(x_begin + TILE, width)
    # [TILE, TILE] even for a clipped tile at the border: its extra pixels are never written out
    trans = np.ones((TILE, TILE), np.float32)
    live = np.ones((TILE, TILE), np.float32)
    acc_r = np.zeros((TILE, TILE), np.float32)
    acc_g = np.zeros((TILE, TILE), np.float32)
    acc_b = np.zeros((TILE, TILE), np.float32)
    row_open = np.full(TILE, TILE, np.int64)
    rows_open = y_end - y_begin
    for k in range(tile_offsets[t], tile_offsets[t + 1]):
        if rows_open == 0:  # every pixel of the tile is done
            break
        mx, my, a, b, c = geom[k, 0], geom[k, 1], geom[k, 2], geom[k, 3], geom[k, 4]
        op, cut = geom[k, 5], geom[k, 6]
        y_lo, y_hi = _row_span(my, _ellipse(geom, k)[4], y_begin, y_end)
        for y in range(y_lo, y_hi + 1):
            r = y - y_begin
            if row_open[r] == 0:
                continue
            dy = my - (_F32(y) + _PIX)
            cdy2 = c * dy * dy
            c0, c1, c2 = cols[k, 0], cols[k, 1], cols[k, 2]
            n = _blend_row(mx, dy, cdy2, a, b, op, cut, c0, c1, c2, x_begin, r, trans, live, acc_r, acc_g, acc_b)
            row_open[r] = n
            if n == 0:
                rows_open -= 1
    for y in range(y_begin, y_end):
        for x in range(x_begin, x_end):
            i, j = y - y_begin, x - x_begin
            out_image[y, x, 0] = acc_r[i, j] + trans[i, j] * background[0]
            out_image[y, x, 1] = acc_g[i, j] + trans[i, j] * background[1]
            out_image[y, x, 2] = acc_b[i, j] + trans[i, j] * background[2]
            out_alpha[y, x] = _ONE - trans[i, j]


@njit(parallel=True, cache=True, nogil=True)
def _parallel(tile_offsets, geom, cols, background, width, height, tiles_x, out_image, out_alpha):
    for t in prange(tile_offsets.shape[0] - 1):
        _tile(t, tile_offsets, geom, cols, background, width, height, tiles_x, out_image, out_alpha)


@njit(cache=True, nogil=True)
def _serial(tile_offsets, geom, cols, background, width, height, tiles_x, out_image, out_alpha):
    for t in range(tile_offsets.shape[0] - 1):
        _tile(t, tile_offsets, geom, cols, background, width, height, tiles_x, out_image, out_alpha)


def composite_rgb(parallel, *args):
    """(tile_offsets, geom [M,8], cols [M,>=3], background [3], width, height, tiles_x,
    out_image [H,W,3], out_alpha [H,W]): front-to-back RGB compositing of the binned rows
    (:mod:`.binning`, tiles of ``conventions.TILE_SIZE``) with the background; out_alpha is
    1 - the final transmittance. Releases the GIL (an encoder thread can run meanwhile)."""
    (_parallel if parallel else _serial)(*args)
