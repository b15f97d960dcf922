"""Binary spherical quantization (BSQ) over several temporal scales, as pure functions.

A feature ``f: [B, T, C]`` is quantized residually, coarse to fine: at each
scale of ``scales`` (token counts, the last equal to T) the residual is
area-pooled to that many tokens, projected onto the unit sphere and quantized
to the nearest corner of the hypercube, ``±1/√C`` per channel (one bit each).
The codes are linearly upsampled back to T and subtracted from the residual.

Bits are ``[B, L, C]`` integers in {0, 1} with ``L = sum(scales)`` (181 for
ARTalk), scale by scale. Three read-outs of the same bits:

* :func:`bits_to_feature` — the quantized feature ``[B, T, C]`` the decoder sees;
* :func:`bits_to_next_inputs` — the VAR teacher-forcing inputs ``[B, L − scales[0], C]``:
  for each scale k ≥ 1, the sum of the codes of scales < k, area-pooled to scale k;
* the codes themselves, :func:`bits_to_codes`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ENTROPY_TEMPERATURE = 100.0
"""Inverse temperature of the soft bit assignment in the entropy penalty (ARTalk's value)."""


def codes_scale(code_dim: int) -> float:
    return code_dim**-0.5


def bsq(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize ``f: [..., C]`` onto ``{±1/√C}^C``; straight-through gradient.

    Returns ``(codes [..., C], bits [..., C] int64)``. A channel exactly 0 maps to bit 0.
    """
    u = F.normalize(f, dim=-1)
    q = torch.where(u > 0, 1.0, -1.0).to(u.dtype) * codes_scale(f.shape[-1])
    codes = u + (q - u).detach()
    return codes, (q > 0).long()


def bits_to_codes(bits: torch.Tensor) -> torch.Tensor:
    """``bits: [..., C]`` in {0, 1} → codes ``±1/√C`` (float32); probabilities in [0, 1] give the expected code."""
    return (bits.float() * 2.0 - 1.0) * codes_scale(bits.shape[-1])


def pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """Area-pool ``x: [B, T, C]`` along T to ``size`` tokens (identity when equal)."""
    if x.shape[1] == size:
        return x
    return F.adaptive_avg_pool1d(x.transpose(1, 2), size).transpose(1, 2)


def upsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Linearly upsample ``x: [B, n, C]`` along n to ``size`` (half-pixel centres, as F.interpolate)."""
    if x.shape[1] == size:
        return x
    return F.interpolate(x.transpose(1, 2), size=size, mode="linear").transpose(1, 2)


def split_scales(x: torch.Tensor, scales: tuple[int, ...]) -> list[torch.Tensor]:
    """Split ``x: [B, L, ...]`` (L = sum(scales), or a prefix of it) into per-scale parts."""
    parts, start = [], 0
    for n in scales:
        if start >= x.shape[1]:
            break
        parts.append(x[:, start : start + n])
        start += n
    return parts


def quantize(
    f: torch.Tensor, scales: tuple[int, ...], losses: bool = True
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Multi-scale residual BSQ of ``f: [B, T, C]`` (T = scales[-1]).

    Returns ``(f_hat [B, T, C], bits [B, L, C], losses)`` where ``f_hat`` is the
    straight-through quantized feature and ``losses`` holds ``commit`` and
    ``entropy`` (sums over scales, for training; zeros when ``losses`` is False).
    """
    T = f.shape[1]
    if T != scales[-1]:
        raise ValueError(f"feature has {T} steps, the finest scale is {scales[-1]}")
    residual, f_hat = f, torch.zeros_like(f)
    all_bits, commit, entropy = [], f.new_zeros(()), f.new_zeros(())
    for n in scales:
        r = pool(residual, n)
        codes, bits = bsq(r)
        if losses:
            u = F.normalize(r, dim=-1)
            commit = commit + ((codes.detach() - u) ** 2).sum(-1).mean()
            entropy = entropy + entropy_penalty(u)
        up = upsample(codes, T)
        residual = residual - up.detach()
        f_hat = f_hat + up
        all_bits.append(bits)
    return f_hat, torch.cat(all_bits, dim=1), {"commit": commit, "entropy": entropy}


def entropy_penalty(u: torch.Tensor) -> torch.Tensor:
    """Per-token bit entropy minus codebook (batch-average) bit entropy, for ``u: [B, n, C]`` on the sphere.

    Low per-token entropy makes assignments confident; high batch entropy spreads
    code usage. Bits factorise, so both entropies are sums over channels.
    """
    C = u.shape[-1]
    p = torch.sigmoid(-4.0 * u * codes_scale(C) * ENTROPY_TEMPERATURE)
    prob = torch.stack([p, 1 - p], dim=-1)
    per_token = -(prob * torch.log(prob + 1e-8)).sum(-1).sum(-1).mean()
    avg = prob.mean(dim=(0, 1))
    codebook = -(avg * torch.log(avg + 1e-8)).sum(-1).sum()
    return (per_token - codebook) / ENTROPY_TEMPERATURE


def bits_to_feature(bits: torch.Tensor, scales: tuple[int, ...]) -> torch.Tensor:
    """Quantized feature ``[B, T, C]`` from ``bits: [B, sum(scales), C]``."""
    T = scales[-1]
    parts = split_scales(bits_to_codes(bits), scales)
    out = torch.zeros(bits.shape[0], T, bits.shape[-1], device=bits.device)
    for codes in parts:
        out = out + upsample(codes, T)
    return out


def bits_to_next_inputs(bits: torch.Tensor, scales: tuple[int, ...], upto: int | None = None) -> torch.Tensor:
    """VAR inputs for scales 1..upto from the bits of scales 0..upto−1.

    ``bits: [B, ≥ sum(scales[:upto]), C]``; ``upto`` defaults to ``len(scales) − 1``.
    Returns ``[B, sum(scales[1:upto+1]), C]``: for each scale k, the accumulated
    codes of scales < k at full resolution, area-pooled to ``scales[k]`` tokens.
    """
    upto = len(scales) - 1 if upto is None else upto
    T = scales[-1]
    parts = split_scales(bits_to_codes(bits[:, : sum(scales[:upto])]), scales)
    acc = torch.zeros(bits.shape[0], T, bits.shape[-1], device=bits.device)
    out = []
    for k in range(upto):
        acc = acc + upsample(parts[k], T)
        out.append(pool(acc, scales[k + 1]))
    return torch.cat(out, dim=1)
