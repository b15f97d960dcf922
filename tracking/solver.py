"""Gauss–Newton normal equations of a tracking problem: per-frame blocks, temporal band, shared block.

Unknowns: P parameters for each of T frames (x, frame-major) and Q shared ones
(y: identity, focal). The Hessian approximation is

    [ A   B ]   A: [TP, TP] block-banded (per-frame blocks + temporal stencils)
    [ Bᵀ  C ]   B: [TP, Q] (frame ↔ shared), C: [Q, Q]

and is solved by eliminating x with a banded Cholesky factorisation (cost
linear in T), then the small Schur complement for y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve_banded, cholesky_banded

ACCELERATION = (1.0, -2.0, 1.0)
VELOCITY = (-1.0, 1.0)


def stencil_cost(x: np.ndarray, stencil: tuple[float, ...], weight: np.ndarray) -> float:
    """Σ_r |Σ_i a_i x[r + i]|²_weight for x [T, P], weight [P]."""
    n = len(stencil)
    rows = len(x) - n + 1
    if rows <= 0:
        return 0.0
    residual = sum(a * x[i : i + rows] for i, a in enumerate(stencil))
    return float((weight * residual**2).sum())


@dataclass
class Normal:
    """Accumulated normal equations (H δ = −g)."""

    blocks: np.ndarray  # [T, P, P] per-frame blocks of A
    cross: np.ndarray  # [T, P, Q] per-frame blocks of B
    shared: np.ndarray  # [Q, Q] C
    grad_frames: np.ndarray  # [T, P]
    grad_shared: np.ndarray  # [Q]
    band: dict  # offset d → [T - d, P] diagonal couplings between frames t and t + d

    @classmethod
    def zeros(cls, frames: int, per_frame: int, shared: int) -> Normal:
        return cls(
            np.zeros((frames, per_frame, per_frame)),
            np.zeros((frames, per_frame, shared)),
            np.zeros((shared, shared)),
            np.zeros((frames, per_frame)),
            np.zeros(shared),
            {},
        )

    def add_stencil(self, x: np.ndarray, stencil: tuple[float, ...], weight: np.ndarray) -> float:
        """Add Σ_r |Σ_i a_i x[r + i]|²_weight (x [T, P], weight [P]); returns that cost."""
        frames = len(x)
        n = len(stencil)
        if frames < n:
            return 0.0
        a = np.asarray(stencil)
        rows = frames - n + 1
        residual = sum(a[i] * x[i : i + rows] for i in range(n))  # [rows, P]
        for i in range(n):
            self.grad_frames[i : i + rows] += 2 * a[i] * weight * residual
            for j in range(i, n):
                value = 2 * a[i] * a[j] * weight  # [P]
                d = j - i
                if d == 0:
                    idx = np.arange(self.blocks.shape[1])
                    self.blocks[i : i + rows, idx, idx] += value
                else:
                    band = self.band.setdefault(d, np.zeros((frames - d, x.shape[1])))
                    band[i : i + rows] += value
        return float((weight * residual**2).sum())

    def solve(
        self, damping: float, fixed_frames: np.ndarray, fixed_shared: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Levenberg–Marquardt step (δx [T, P], δy [Q]); ``fixed_*`` masks pin parameters."""
        frames, p = self.grad_frames.shape
        q = len(self.grad_shared)
        blocks = self.blocks.copy()
        idx = np.arange(p)
        diag = blocks[:, idx, idx]
        blocks[:, idx, idx] = diag * (1 + damping) + 1e-9 + np.where(fixed_frames, 1e12, 0.0)
        grad = np.where(fixed_frames, 0.0, self.grad_frames)
        cross = np.where(fixed_frames[..., None] | fixed_shared[None, None], 0.0, self.cross)
        shared = self.shared.copy()
        sd = np.diag(shared).copy()
        shared[np.arange(q), np.arange(q)] = sd * (1 + damping) + 1e-9 + np.where(fixed_shared, 1e12, 0.0)
        grad_shared = np.where(fixed_shared, 0.0, self.grad_shared)

        reach = max(self.band, default=0)
        upper = (reach + 1) * p - 1
        n = frames * p
        ab = np.zeros((upper + 1, n))  # upper banded storage: ab[upper + i - j, j] = A[i, j], j ≥ i
        a_idx, b_idx = np.triu_indices(p)
        cols = (np.arange(frames)[:, None] * p + b_idx[None]).ravel()
        ab[np.tile(upper + a_idx - b_idx, frames), cols] = blocks[:, a_idx, b_idx].ravel()
        for d, values in self.band.items():
            cols = (np.arange(d, frames)[:, None] * p + idx[None]).ravel()
            ab[upper - d * p, cols] = np.where(fixed_frames[d:] | fixed_frames[:-d], 0.0, values).ravel()
        factor = cholesky_banded(ab, lower=False, check_finite=False)
        rhs = np.concatenate([grad.reshape(n, 1), cross.reshape(n, q)], 1)
        z = cho_solve_banded((factor, False), rhs, check_finite=False)
        z_grad, z_cross = z[:, 0], z[:, 1:]
        cross_flat = cross.reshape(n, q)
        schur = shared - cross_flat.T @ z_cross
        dy = np.linalg.solve(schur, -grad_shared + cross_flat.T @ z_grad) if q else np.zeros(0)
        dx = -z_grad - z_cross @ dy
        return dx.reshape(frames, p), dy
