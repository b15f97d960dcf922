"""The trainable Gaussian parameters with their Adam state, and the row surgery densification needs.

The colour is trained as two tensors (degree-0 and higher SH degrees) so each
can have its own learning rate, as in 3DGS; :meth:`GaussianParams.bound`
assembles them into a :class:`BoundGaussians` for posing.

Adam is written out here (same update as ``torch.optim.Adam``): the moments are
plain tensors that densification slices and extends row by row, and building a
``torch.optim`` optimizer imports torch._dynamo, which cost 5–16 s per process on
the 2-core machine.
"""

from __future__ import annotations

import math

import torch

from splattalk.avatar.binding import BoundGaussians

NAMES = ("local_means", "local_quats", "log_scales", "opacity_logits", "sh_dc", "sh_rest")
BETAS = (0.9, 0.999)
EPS = 1e-15


class GaussianParams:
    """Leaf tensors (one row per Gaussian), non-trainable parent ids, and Adam moments per tensor."""

    def __init__(self, bound: BoundGaussians, lrs: dict[str, float], device: torch.device | str = "cpu"):
        self.parent = bound.parent.clone().to(device)
        tensors = {
            "local_means": bound.local_means,
            "local_quats": bound.local_quats,
            "log_scales": bound.log_scales,
            "opacity_logits": bound.opacity_logits,
            "sh_dc": bound.sh[:, :1],
            "sh_rest": bound.sh[:, 1:],
        }
        self.tensors = {
            k: tensors[k].detach().to(device, torch.float32).clone().contiguous().requires_grad_(True) for k in NAMES
        }
        self.base_lrs = {k: float(lrs[k]) for k in NAMES}
        self.lrs = dict(self.base_lrs)
        self.exp_avg = {k: torch.zeros_like(v) for k, v in self.tensors.items()}
        self.exp_avg_sq = {k: torch.zeros_like(v) for k, v in self.tensors.items()}
        self.steps = 0

    @property
    def num(self) -> int:
        return self.parent.shape[0]

    def bound(self) -> BoundGaussians:
        t = self.tensors
        return BoundGaussians(
            parent=self.parent,
            local_means=t["local_means"],
            local_quats=t["local_quats"],
            log_scales=t["log_scales"],
            opacity_logits=t["opacity_logits"],
            sh=torch.cat([t["sh_dc"], t["sh_rest"]], dim=1),
        )

    def detached(self) -> BoundGaussians:
        """A frozen CPU copy (for saving and playback)."""
        b = self.bound()
        return BoundGaussians(**{k: v.detach().cpu().clone() for k, v in b.tensors().items()})

    # -- Adam ------------------------------------------------------------------------------
    def step(self) -> None:
        """One Adam step on every tensor with a gradient, then clear the gradients."""
        self.steps += 1
        b1, b2 = BETAS
        bc1 = 1 - b1**self.steps
        bc2_sqrt = math.sqrt(1 - b2**self.steps)
        with torch.no_grad():
            for name, p in self.tensors.items():
                if p.grad is None:
                    continue
                g = p.grad
                m, v = self.exp_avg[name], self.exp_avg_sq[name]
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v.sqrt() / bc2_sqrt).add_(EPS)
                p.addcdiv_(m, denom, value=-self.lrs[name] / bc1)
                p.grad = None

    def set_learning_rates(self, iteration: int, total: int, decay: dict[str, float]) -> None:
        """Exponential decay from the base rate to base·decay[name] over ``total`` iterations (log-linear, as 3DGS)."""
        u = min(max(iteration / max(total, 1), 0.0), 1.0)
        for name, base in self.base_lrs.items():
            self.lrs[name] = base * math.exp(u * math.log(decay.get(name, 1.0)))

    def edit_rows(
        self, keep: torch.Tensor, new: dict[str, torch.Tensor] | None = None, new_parent: torch.Tensor | None = None
    ) -> None:
        """Keep rows where ``keep`` ([N] bool) and append ``new`` rows; Adam moments follow (zero for new rows)."""
        keep = keep.to(self.parent.device)
        for name in NAMES:
            data = self.tensors[name].detach()[keep]
            m, v = self.exp_avg[name][keep], self.exp_avg_sq[name][keep]
            if new is not None:
                rows = new[name].to(data.device, data.dtype)
                data = torch.cat([data, rows], dim=0)
                m = torch.cat([m, torch.zeros_like(rows)], dim=0)
                v = torch.cat([v, torch.zeros_like(rows)], dim=0)
            self.tensors[name] = data.contiguous().requires_grad_(True)
            self.exp_avg[name], self.exp_avg_sq[name] = m.contiguous(), v.contiguous()
        parent = self.parent[keep]
        if new_parent is not None:
            parent = torch.cat([parent, new_parent.to(parent.device)], dim=0)
        self.parent = parent

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        cpu = lambda d: {k: v.detach().cpu() for k, v in d.items()}  # noqa: E731
        return {
            "parent": self.parent.cpu(),
            "tensors": cpu(self.tensors),
            "exp_avg": cpu(self.exp_avg),
            "exp_avg_sq": cpu(self.exp_avg_sq),
            "steps": self.steps,
            "base_lrs": self.base_lrs,
        }

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device | str = "cpu") -> GaussianParams:
        t = state["tensors"]
        bound = BoundGaussians(
            parent=state["parent"],
            local_means=t["local_means"],
            local_quats=t["local_quats"],
            log_scales=t["log_scales"],
            opacity_logits=t["opacity_logits"],
            sh=torch.cat([t["sh_dc"], t["sh_rest"]], dim=1),
        )
        params = cls(bound, state["base_lrs"], device)
        params.exp_avg = {k: v.to(device).clone() for k, v in state["exp_avg"].items()}
        params.exp_avg_sq = {k: v.to(device).clone() for k, v in state["exp_avg_sq"].items()}
        params.steps = int(state["steps"])
        return params
