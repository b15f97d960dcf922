"""Adaptive density control for bound Gaussians (3DGS's rule, in triangle-local coordinates).

Between densification steps we accumulate, per Gaussian, the norm of the
view-space positional gradient (``info["means2d"].grad`` in pixels, scaled to
NDC units as 3DGS and gsplat do) over the iterations where it was rendered.
Gaussians whose mean gradient passes the threshold are under-reconstructing:
small ones are cloned (a copy on the same triangle), large ones split into two
smaller ones sampled from their own distribution. Nearly transparent or
oversized Gaussians are pruned. A cap bounds the count: when it would be
exceeded, only the strongest candidates grow.

:class:`DensifyStrategy` holds the accumulators and the schedule; the fit loop
only calls its hook each iteration (gsplat's ``strategy`` pattern), so another
density-control rule is another class with the same hook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from splattalk.avatar import quaternion
from splattalk.avatar.optim import GaussianParams

SPLIT_SHRINK = 1.6
"""Scale divisor of the two children of a split (3DGS's 0.8·2)."""


@dataclass
class DensifyStats:
    grad_sum: torch.Tensor
    """[N] summed NDC-space positional gradient norms"""
    count: torch.Tensor
    """[N] iterations in which each Gaussian was rendered"""

    @classmethod
    def zeros(cls, n: int) -> DensifyStats:
        return cls(torch.zeros(n), torch.zeros(n))

    def accumulate(self, means2d_grad: torch.Tensor, radii: torch.Tensor, width: int, height: int) -> None:
        """means2d_grad: [N, 2] dLoss/d(pixel position); radii: [N] (0 = not rendered)."""
        g = means2d_grad.detach().float().cpu()
        ndc = torch.stack([g[:, 0] * (width / 2), g[:, 1] * (height / 2)], dim=1).norm(dim=1)
        seen = radii.detach().cpu() > 0
        self.grad_sum += torch.where(seen, ndc, torch.zeros_like(ndc))
        self.count += seen.float()

    def mean(self) -> torch.Tensor:
        return self.grad_sum / self.count.clamp_min(1)


def world_size(params: GaussianParams, face_size: torch.Tensor) -> torch.Tensor:
    """[N] largest world-space scale of each Gaussian on the rest mesh (face_size: [F] triangle sizes)."""
    scales = torch.exp(params.tensors["log_scales"].detach()).amax(dim=1).cpu()
    return scales * face_size[params.parent.cpu()]


def densify(
    params: GaussianParams,
    stats: DensifyStats,
    face_size: torch.Tensor,
    head_size: float,
    *,
    grad_threshold: float,
    dense_fraction: float,
    max_count: int,
    generator: torch.Generator,
) -> dict[str, int]:
    """Clone small and split large Gaussians whose mean gradient exceeds the threshold (up to ``max_count``)."""
    n = params.num
    score = stats.mean()
    candidates = score >= grad_threshold
    room = max(max_count - n, 0)
    size = world_size(params, face_size)
    small = size <= dense_fraction * head_size
    # each clone adds one Gaussian, each split one net (two children replace the parent)
    if int(candidates.sum()) > room:
        order = torch.argsort(
            torch.where(candidates, score, torch.full_like(score, -1.0)), descending=True, stable=True
        )
        chosen = torch.zeros(n, dtype=torch.bool)
        chosen[order[:room]] = True
        candidates &= chosen
    clone = candidates & small
    split = candidates & ~small
    t = {k: v.detach().cpu() for k, v in params.tensors.items()}
    parent = params.parent.cpu()

    new = {k: v[clone] for k, v in t.items()}
    new_parent = [parent[clone]]
    if split.any():
        ids = torch.nonzero(split)[:, 0]
        s = torch.exp(t["log_scales"][ids])
        rot = quaternion.to_matrix(t["local_quats"][ids])
        children = []
        for _ in range(2):
            z = torch.randn(len(ids), 3, generator=generator)
            offset = (rot @ (z * s)[..., None])[..., 0]
            child = {k: v[ids] for k, v in t.items()}
            child["local_means"] = child["local_means"] + offset
            child["log_scales"] = child["log_scales"] - math.log(SPLIT_SHRINK)
            children.append(child)
            new_parent.append(parent[ids])
        new = {k: torch.cat([new[k]] + [c[k] for c in children], dim=0) for k in new}
    keep = ~split
    params.edit_rows(keep, new, torch.cat(new_parent))
    return {"cloned": int(clone.sum()), "split": int(split.sum())}


def prune(
    params: GaussianParams,
    face_size: torch.Tensor,
    head_size: float,
    *,
    min_opacity: float,
    max_size_fraction: float,
    min_count: int = 1,
) -> int:
    """Remove nearly transparent and oversized Gaussians; returns how many went."""
    opacity = torch.sigmoid(params.tensors["opacity_logits"].detach()).cpu()
    drop = (opacity < min_opacity) | (world_size(params, face_size) > max_size_fraction * head_size)
    if params.num - int(drop.sum()) < min_count:  # never prune to (almost) nothing
        return 0
    if drop.any():
        params.edit_rows(~drop)
    return int(drop.sum())


@dataclass
class DensifyStrategy:
    """3DGS's schedule of :func:`densify` and :func:`prune`, with its gradient accumulators.

    Every ``every`` iterations up to ``densify_until`` it clones/splits (from
    ``densify_from`` on), prunes, and restarts the accumulators; after that it only prunes.
    """

    face_size: torch.Tensor
    """[F] triangle sizes on the rest mesh (Gaussian sizes are relative to their triangle)"""
    head_size: float
    """diagonal of the carrying part of the rest mesh (metres): size thresholds are fractions of it"""
    generator: torch.Generator
    """draws the split children's positions (the fit shares its frame sampler's, so a checkpoint restores both)"""
    max_count: int
    """cap on the number of Gaussians"""
    densify_from: int
    """first iteration that may clone/split"""
    densify_until: int
    """last iteration that accumulates gradients and may clone/split"""
    every: int
    """iterations between densification/pruning steps"""
    grad_threshold: float
    """mean NDC positional gradient above which a Gaussian grows"""
    dense_fraction: float
    """Gaussians up to this fraction of the head size are cloned, larger ones split"""
    prune_opacity: float
    """Gaussians below this opacity are removed"""
    prune_size: float
    """Gaussians above this fraction of the head size are removed"""
    stats: DensifyStats = field(default_factory=lambda: DensifyStats.zeros(0))
    """gradient accumulators since the last densification step"""

    def initialize(self, n: int) -> None:
        """Start empty accumulators for ``n`` Gaussians (a fresh fit)."""
        self.stats = DensifyStats.zeros(n)

    def step_post_backward(self, params: GaussianParams, step: int, info: dict) -> dict[str, int]:
        """After ``loss.backward()`` and the optimizer step of iteration ``step`` (1-based).

        (gsplat calls its hook of this name before the step; here densification edits the stepped
        Gaussians, as every fit so far did. The gradients it reads are the same either way.)
        ``info`` is ``rasterize(..., return_info=True)``'s: ``means2d`` (with its ``.grad``), ``radii``,
        ``width``, ``height``. Returns what changed: ``cloned``, ``split``, ``pruned`` (zeros when nothing ran).
        """
        done = {"cloned": 0, "split": 0, "pruned": 0}
        growing = step <= self.densify_until
        if growing:
            self.stats.accumulate(info["means2d"].grad, info["radii"], info["width"], info["height"])
        if step % self.every != 0:
            return done
        if growing and step >= self.densify_from:
            done.update(
                densify(
                    params,
                    self.stats,
                    self.face_size,
                    self.head_size,
                    grad_threshold=self.grad_threshold,
                    dense_fraction=self.dense_fraction,
                    max_count=self.max_count,
                    generator=self.generator,
                )
            )
        done["pruned"] = prune(
            params, self.face_size, self.head_size, min_opacity=self.prune_opacity, max_size_fraction=self.prune_size
        )
        if growing:
            self.stats = DensifyStats.zeros(params.num)
        return done

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"grad_sum": self.stats.grad_sum, "count": self.stats.count}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.stats = DensifyStats(state["grad_sum"], state["count"])
