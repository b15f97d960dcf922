"""Layers of the autoregressive transformer: per-token AdaLN blocks with a KV cache.

Each token carries its own condition vector (the audio pooled at its scale and
position), which an AdaLN modulation turns into per-token scale/shift/gate of
the normalised activations (VAR-style, but per token instead of per sequence).

The prefix (previous window's tokens) enters every layer only through that
layer's key/value projections: it is not itself transformed by the blocks.
So a layer's prefix keys/values are computed once per window and cached; the
tokens of each new scale then only add their own keys/values (the block-causal
mask means earlier scales never attend to later ones).

Attribute names follow the official checkpoint (``attn_blocks.i.*``,
``cond_logits_head.*``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

MAX_LOG_SCALE = math.log(100.0)
"""Cap on the learned per-head attention temperature (log-space)."""


def level_mask(scales: tuple[int, ...], prefix_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-causal additive mask over scales, after a fully visible prefix.

    Returns ``(mask [1, 1, L, prefix + L], level [1, L] int64)`` with L = sum(scales):
    a token of scale i sees the whole prefix and every token of scales ≤ i.
    """
    level = torch.cat([torch.full((n,), i, dtype=torch.int64) for i, n in enumerate(scales)])
    causal = torch.where(level[:, None] >= level[None, :], 0.0, float("-inf"))
    L = level.numel()
    mask = torch.cat([torch.zeros(L, prefix_tokens), causal], dim=1)
    return mask[None, None].contiguous(), level[None].contiguous()


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop a sample's whole residual branch with probability ``p`` (training only)."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


@dataclass
class LayerCache:
    """Keys (already L2-normalised) and values ``[B, H, n, c]`` seen so far by one layer."""

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


@dataclass
class KVCache:
    """One :class:`LayerCache` per block; filled with the prefix, then grown scale by scale."""

    layers: list[LayerCache] = field(default_factory=list)

    @property
    def length(self) -> int:
        first = self.layers[0].k if self.layers else None
        return 0 if first is None else first.shape[2]


class CosineAttention(nn.Module):
    """Attention on L2-normalised queries/keys with a learned per-head temperature; key has no bias."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), 4.0).log())
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        return x.view(B, L, self.heads, C // self.heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x: [B, n, C]`` → normalised keys and values ``[B, H, n, c]``."""
        return F.normalize(self._heads(self.key(x)), dim=-1), self._heads(self.value(x))

    def attend(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Queries from ``x: [B, L, C]`` over ``k, v: [B, H, n, c]`` → ``[B, L, C]``."""
        B, L, C = x.shape
        q = F.normalize(self._heads(self.query(x)), dim=-1) * self.scale_mul_1H11.clamp_max(MAX_LOG_SCALE).exp()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
        return self.proj(out.transpose(1, 2).reshape(B, L, C))


class AdaLNBlock(nn.Module):
    """Self-attention + MLP, each behind a per-token AdaLN (scale, shift, gate) from the condition."""

    def __init__(self, dim: int, cond_dim: int, heads: int, drop_path: float = 0.0, mlp_ratio: float = 4.0):
        super().__init__()
        self.drop_path = drop_path
        self.attn = CosineAttention(dim, heads)
        hidden = round(dim * mlp_ratio)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * dim))

    def modulation(self, cond: torch.Tensor) -> torch.Tensor:
        """Per-token AdaLN parameters ``[B, L, 6, C]`` from ``cond: [B, L, cond_dim]``.

        Chunk order as in the official weights: gate1, gate2, scale1, scale2, shift1, shift2.
        Inference computes it once per window for all tokens (one large matmul instead of
        one small one per scale) and passes slices to :meth:`forward`.
        """
        B, L, _ = cond.shape
        return self.ada_lin(cond).view(B, L, 6, -1)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        prefix: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        cache: LayerCache | None = None,
        modulation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x: [B, L, C]`` tokens, ``cond: [B, L, cond_dim]`` (or ``modulation``, precomputed from it).

        Without ``cache``: keys/values over ``cat(prefix, x)`` under ``mask`` (training, and the
        official recompute-everything inference). With ``cache``: ``x`` are the tokens of one new
        scale; their keys/values are appended and they attend to everything cached plus themselves.
        """
        mod = self.modulation(cond) if modulation is None else modulation
        gate1, gate2, scale1, scale2, shift1, shift2 = mod.unbind(2)
        h = F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale1) + shift1
        if cache is None:
            k, v = self.attn.keys_values(h if prefix is None else torch.cat([prefix, h], dim=1))
            a = self.attn.attend(h, k, v, mask)
        else:
            k, v = cache.append(*self.attn.keys_values(h))
            a = self.attn.attend(h, k, v, None)
        x = x + drop_path(a * gate1, self.drop_path, self.training)
        h = F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale2) + shift2
        return x + drop_path(self.ffn(h) * gate2, self.drop_path, self.training)

    def prefix_cache(self, prefix: torch.Tensor) -> LayerCache:
        """Cache holding the keys/values of the (un-normalised, unmodulated) prefix ``[B, n, C]``."""
        k, v = self.attn.keys_values(prefix)
        return LayerCache(k, v)


class AdaLNHead(nn.Module):
    """Final per-token AdaLN before the logits."""

    def __init__(self, dim: int, cond_dim: int):
        super().__init__()
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * dim))

    def modulation(self, cond: torch.Tensor) -> torch.Tensor:
        B, L, _ = cond.shape
        return self.ada_lin(cond).view(B, L, 2, -1)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None, modulation: torch.Tensor | None = None
    ) -> torch.Tensor:
        scale, shift = (self.modulation(cond) if modulation is None else modulation).unbind(2)
        return F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale) + shift
