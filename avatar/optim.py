"""The trainable Gaussian parameters with their Adam optimizer, and the row surgery densification needs.

The colour is trained as two tensors (degree-0 and higher SH degrees) so each
can have its own learning rate, as in 3DGS; :meth:`GaussianParams.bound`
assembles them into a :class:`BoundGaussians` for posing.
"""

from __future__ import annotations

import math

import torch

from splattalk.avatar.binding import BoundGaussians

NAMES = ("local_means", "local_quats", "log_scales", "opacity_logits", "sh_dc", "sh_rest")


class GaussianParams:
    """Leaf tensors (one row per Gaussian) + non-trainable parent ids + their Adam optimizer."""

    def __init__(self, bound: BoundGaussians, lrs: dict[str, float], device: torch.device | str = "cpu"):
        self.parent = bound.parent.clone().to(device)
        tensors = {
            "local_means": bound.local_means, "local_quats": bound.local_quats, "log_scales": bound.log_scales,
            "opacity_logits": bound.opacity_logits, "sh_dc": bound.sh[:, :1], "sh_rest": bound.sh[:, 1:],
        }
        self.tensors = {k: v.detach().to(device, torch.float32).clone().contiguous().requires_grad_(True)
                        for k, v in tensors.items()}
        self.base_lrs = dict(lrs)
        groups = [{"params": [self.tensors[k]], "name": k, "lr": lrs[k]} for k in NAMES]
        self.optimizer = torch.optim.Adam(groups, lr=0.0, eps=1e-15)

    @property
    def num(self) -> int:
        return self.parent.shape[0]

    def bound(self) -> BoundGaussians:
        t = self.tensors
        return BoundGaussians(
            parent=self.parent, local_means=t["local_means"], local_quats=t["local_quats"], log_scales=t["log_scales"],
            opacity_logits=t["opacity_logits"], sh=torch.cat([t["sh_dc"], t["sh_rest"]], dim=1),
        )

    def detached(self) -> BoundGaussians:
        """A frozen copy (for saving and playback)."""
        b = self.bound()
        return BoundGaussians(**{k: v.detach().cpu().clone() for k, v in b.tensors().items()})

    def set_learning_rates(self, iteration: int, total: int, decay: dict[str, float]) -> None:
        """Exponential decay from the base rate to base·decay[name] over ``total`` iterations (log-linear, as 3DGS)."""
        u = min(max(iteration / max(total, 1), 0.0), 1.0)
        for group in self.optimizer.param_groups:
            final = decay.get(group["name"], 1.0)
            group["lr"] = self.base_lrs[group["name"]] * math.exp(u * math.log(final))

    def edit_rows(self, keep: torch.Tensor, new: dict[str, torch.Tensor] | None = None,
                  new_parent: torch.Tensor | None = None) -> None:
        """Keep rows where ``keep`` ([N] bool) and append ``new`` rows; Adam moments follow (zero for new rows)."""
        keep = keep.to(self.parent.device)
        for group in self.optimizer.param_groups:
            name = group["name"]
            old = group["params"][0]
            state = self.optimizer.state.pop(old, {})
            data = old.detach()[keep]
            extra = 0
            if new is not None:
                data = torch.cat([data, new[name].to(data.device, data.dtype)], dim=0)
                extra = new[name].shape[0]
            param = data.contiguous().requires_grad_(True)
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    moment = state[key][keep]
                    if extra:
                        moment = torch.cat([moment, moment.new_zeros((extra, *moment.shape[1:]))], dim=0)
                    state[key] = moment.contiguous()
            group["params"] = [param]
            if state:
                self.optimizer.state[param] = state
            self.tensors[name] = param
        parent = self.parent[keep]
        if new_parent is not None:
            parent = torch.cat([parent, new_parent.to(parent.device)], dim=0)
        self.parent = parent

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "parent": self.parent.cpu(),
            "tensors": {k: v.detach().cpu() for k, v in self.tensors.items()},
            "optimizer": self.optimizer.state_dict(),
            "base_lrs": self.base_lrs,
        }

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device | str = "cpu") -> "GaussianParams":
        t = state["tensors"]
        bound = BoundGaussians(
            parent=state["parent"], local_means=t["local_means"], local_quats=t["local_quats"], log_scales=t["log_scales"],
            opacity_logits=t["opacity_logits"], sh=torch.cat([t["sh_dc"], t["sh_rest"]], dim=1),
        )
        params = cls(bound, state["base_lrs"], device)
        params.optimizer.load_state_dict(state["optimizer"])
        return params
