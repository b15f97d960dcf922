"""Optional fine-tuning of the tracked per-frame parameters during the fit.

Each training frame gets a small additive correction to its expression, jaw,
head rotation, translation and gaze, trained with the image loss and pulled back
towards zero (the tracks) by an L2 prior. Only the row of the frame rendered in an
iteration is updated (a per-row Adam): frames are visited a few dozen times
in a whole fit, and plain Adam would keep moving unvisited rows on momentum.
Held-out frames are never corrected.
"""

from __future__ import annotations

import torch

from splattalk.head.params import HeadParams

FIELDS = {"expr": 1.0, "jaw": 1.0, "rot": 1.0, "transl": 0.1, "eyes": 1.0}
"""Corrected parameters and the unit of their correction (translation in decimetres: ~1 mm steps matter)."""
BETAS = (0.9, 0.999)
EPS = 1e-8


class FrameCorrections:
    def __init__(self, params: HeadParams, lr: float, weight: float):
        self.lr, self.weight = lr, weight
        n = len(params)
        self.base = {k: torch.from_numpy(getattr(params, k).copy()) for k in FIELDS}
        self.delta = {k: torch.zeros_like(v) for k, v in self.base.items()}
        self.m = {k: torch.zeros_like(v) for k, v in self.base.items()}
        self.v = {k: torch.zeros_like(v) for k, v in self.base.items()}
        self.steps = torch.zeros(n, dtype=torch.int64)
        self.neck = torch.from_numpy(params.neck.copy())

    def rows(self, frame: int) -> dict[str, torch.Tensor]:
        """Leaf tensors (requires grad) of frame ``frame``'s corrections, in correction units."""
        return {k: d[frame : frame + 1].clone().requires_grad_(True) for k, d in self.delta.items()}

    def head_kwargs(self, frame: int, rows: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """``HeadModel.forward`` arguments (without shape) of frame ``frame``, corrected."""
        rows = rows if rows is not None else {k: d[frame : frame + 1] for k, d in self.delta.items()}
        p = {k: self.base[k][frame : frame + 1] + rows[k] * unit for k, unit in FIELDS.items()}
        return dict(
            expr=p["expr"],
            jaw=p["jaw"],
            rotation=p["rot"],
            translation=p["transl"],
            eyes=p["eyes"],
            neck=self.neck[frame : frame + 1],
        )

    def step(self, frame: int, rows: dict[str, torch.Tensor]) -> None:
        """Adam update of one frame's row from the image-loss gradient plus the L2 prior's."""
        self.steps[frame] += 1
        t = int(self.steps[frame])
        b1, b2 = BETAS
        for k, row in rows.items():
            grad = torch.zeros_like(row) if row.grad is None else row.grad.detach()
            grad = grad[0] + 2 * self.weight * self.delta[k][frame]
            m = self.m[k][frame] = b1 * self.m[k][frame] + (1 - b1) * grad
            v = self.v[k][frame] = b2 * self.v[k][frame] + (1 - b2) * grad * grad
            update = self.lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + EPS)
            self.delta[k][frame] -= update

    def corrected(self) -> HeadParams:
        """All frames' parameters with the corrections applied (neck unchanged)."""
        p = {k: (self.base[k] + self.delta[k] * unit).numpy() for k, unit in FIELDS.items()}
        return HeadParams(
            expr=p["expr"], jaw=p["jaw"], neck=self.neck.numpy(), rot=p["rot"], transl=p["transl"], eyes=p["eyes"]
        )

    def state_dict(self) -> dict:
        return {"delta": self.delta, "m": self.m, "v": self.v, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        for name in ("delta", "m", "v"):
            getattr(self, name).update({k: v.clone() for k, v in state[name].items()})
        self.steps = state["steps"].clone()
