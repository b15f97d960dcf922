"""Numerical conventions shared by every rasterizer backend.

They are gsplat's (``gsplat.rasterization`` in its default "classic" mode), so the
``gsplat``, ``cpu`` and ``reference`` backends render the same image:

- pixel ``(x, y)`` is sampled at its centre ``(x + 0.5, y + 0.5)``;
- a Gaussian is dropped when its camera-space depth is ``< NEAR_PLANE`` or ``> FAR_PLANE``,
  when its opacity is ``< ALPHA_MIN``, or when its screen box misses the image;
- the projected 2D covariance gets ``EPS2D`` added on its diagonal (a low-pass blur);
- the EWA Jacobian uses the camera-space ``x/z``, ``y/z`` clamped to ``FRUSTUM_MARGIN``
  times the half field of view beyond the image borders (the 2D mean is not clamped);
- the screen box is ``ceil(extend * sqrt(cov2d_ii))`` pixels either side of the mean with
  ``extend = min(EXTEND_MAX, sqrt(2 ln(opacity / ALPHA_MIN)))`` (opacity-aware, tight: no
  pixel outside it can reach ``ALPHA_MIN``);
- per pixel, front to back by camera-space depth: ``alpha = min(ALPHA_MAX, o exp(-sigma))``,
  skipped when ``sigma < 0`` or ``alpha < ALPHA_MIN``; the pixel stops *before* the
  Gaussian that would take the transmittance to ``<= T_MIN``;
- ``rgb = sum(c_i alpha_i T_i) + T_final * background``, ``alpha = 1 - T_final``;
  expected depth is ``sum(z_i alpha_i T_i) / max(alpha, 1e-10)``.

Only plain numbers live here so the module is free to import anywhere.
"""

NEAR_PLANE = 0.01
FAR_PLANE = 1e10
EPS2D = 0.3
TILE_SIZE = 16
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4
EXTEND_MAX = 3.33
FRUSTUM_MARGIN = 0.3
DEPTH_ALPHA_FLOOR = 1e-10

# Real spherical-harmonics basis up to degree 3 in the polynomial form gsplat's CUDA
# kernels use (on the unit sphere it equals the textbook basis). Colour is
# max(sum_k basis_k(d) * coeff_k + SH_OFFSET, 0), d the unit vector camera centre -> mean.
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2_XY = 1.0925484305920792  # basis 4:  C * x*y        (basis 5, 7 use -C * y*z, -C * x*z)
SH_C2_ZZ = 0.9461746957575601  # basis 6:  ZZ * z^2 - Z0
SH_C2_Z0 = 0.3153915652525201
SH_C2_XX = 0.5462742152960396  # basis 8:  C * (x^2 - y^2)
SH_C3_A = 0.5900435899266435  # basis 9, 15: -A * (3x^2 y - y^3), -A * (x^3 - 3x y^2)
SH_C3_B = 1.445305721320277  # basis 10, 14: B * z * 2xy, B * z * (x^2 - y^2)
SH_C3_C0 = 0.4570457994644658  # basis 11, 13: y * (C0 - C1 z^2), x * (C0 - C1 z^2)
SH_C3_C1 = 2.285228997322329
SH_C3_D0 = 1.865881662950577  # basis 12: z * (D0 z^2 - D1)
SH_C3_D1 = 1.119528997770346
SH_OFFSET = 0.5


def sh_coeff_count(degree: int) -> int:
    """Number of SH coefficients a colour of ``degree`` (0..3) uses: ``(degree + 1)^2``."""
    return (degree + 1) ** 2
