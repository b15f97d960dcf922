"""The motion VQ-VAE: transformer encoder/decoder around multi-scale BSQ (ARTalk stage 1).

Motion windows of W frames are encoded in pairs, previous + current (2W
tokens), under a block mask: previous-window tokens attend only to the
previous window, current-window tokens to both. So the previous window is
encoded on its own, and the current one in the context of the previous.

Attribute names follow the official checkpoint (``basic_vae.*`` keys).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from splattalk.talk import bsq
from splattalk.talk.config import TalkConfig


def block_mask(window: int) -> torch.Tensor:
    """Additive attention mask ``[1, 1, 2W, 2W]``: previous sees previous, current sees both."""
    mask = torch.zeros(2 * window, 2 * window)
    mask[:window, window:] = float("-inf")
    return mask[None, None]


class SelfAttention(nn.Module):
    """Pre-LayerNorm multi-head self-attention (no residual). Scale 1/√width, as ARTalk's VQ-VAE."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, L, C = x.shape
        qkv = self.to_qkv(self.norm(x)).view(B, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask, scale=C**-0.5)
        return self.to_out(out.transpose(1, 2).reshape(B, L, C))


def _mlp(dim: int) -> nn.Sequential:
    hidden = int(1.5 * dim)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))


class _Stack(nn.Module):
    """Input map → [attention, MLP] × depth (residual; the MLP has no norm) → output map."""

    def __init__(self, in_dim: int, dim: int, out_dim: int, depth: int, heads: int, blocks_name: str, out_name: str):
        super().__init__()
        self.inp_mapping = nn.Sequential(nn.Linear(in_dim, dim), nn.LeakyReLU(0.2))
        blocks = nn.ModuleList()
        for _ in range(depth):
            blocks.append(SelfAttention(dim, heads))
            blocks.append(_mlp(dim))
        self._blocks_name, self._out_name = blocks_name, out_name
        self.add_module(blocks_name, blocks)
        self.add_module(out_name, nn.Linear(dim, out_dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        h = self.inp_mapping(x)
        for block in getattr(self, self._blocks_name):
            h = h + (block(h, mask) if isinstance(block, SelfAttention) else block(h))
        return getattr(self, self._out_name)(h)


class MotionVQVAE(nn.Module):
    """Encode motion windows to multi-scale bits and decode bits to motion."""

    def __init__(self, cfg: TalkConfig):
        super().__init__()
        self.scales = tuple(cfg.scales)
        W, D, C = cfg.window, cfg.motion_dim, cfg.code_dim
        self.encoder = _Stack(D, cfg.vae_dim, C, cfg.vae_depth, cfg.vae_heads, "encoder_transformer", "code_mapping")
        self.decoder = _Stack(C, cfg.vae_dim, D, cfg.vae_depth, cfg.vae_heads, "decoder_transformer", "out_mapping")
        nn.init.xavier_uniform_(self.decoder.out_mapping.weight, gain=0.05)
        nn.init.zeros_(self.decoder.out_mapping.bias)
        self.enc_pos_embed = nn.Parameter(torch.randn(1, 2 * W, D) * 0.02)
        self.dec_pos_embed = nn.Parameter(torch.randn(1, 2 * W, C) * 0.02)
        nn.init.trunc_normal_(self.enc_pos_embed, std=math.sqrt(1 / D / 3))
        nn.init.trunc_normal_(self.dec_pos_embed, std=math.sqrt(1 / C / 3))
        self.register_buffer("attn_mask", block_mask(W))
        # Motion normalisation statistics (set from the training data; ARTalk ships its own).
        self.register_buffer("motion_mean", torch.zeros(D))
        self.register_buffer("motion_std", torch.ones(D))

    @property
    def window(self) -> int:
        return self.scales[-1]

    def normalize(self, motion: torch.Tensor) -> torch.Tensor:
        return (motion - self.motion_mean) / self.motion_std

    def denormalize(self, motion: torch.Tensor) -> torch.Tensor:
        return motion * self.motion_std + self.motion_mean

    def encode_features(self, prev: torch.Tensor, this: torch.Tensor | None = None) -> torch.Tensor:
        """Continuous encoder output. ``prev, this: [B, W, D]`` motion → ``[B, W or 2W, C]``."""
        x = self.normalize(prev if this is None else torch.cat([prev, this], dim=1))
        L = x.shape[1]
        return self.encoder(x + self.enc_pos_embed[:, :L], self.attn_mask[:, :, :L, :L])

    def encode(self, prev: torch.Tensor, this: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Bits of ``prev`` (encoded alone) and, if given, of ``this`` (in the context of ``prev``).

        ``prev, this: [B, W, D]`` → ``(prev_bits [B, L, C], this_bits [B, L, C] | None)``.
        """
        W = self.window
        feat = self.encode_features(prev, this)
        _, prev_bits, _ = bsq.quantize(feat[:, :W], self.scales, losses=False)
        if this is None:
            return prev_bits, None
        _, this_bits, _ = bsq.quantize(feat[:, W:], self.scales, losses=False)
        return prev_bits, this_bits

    def decode_features(self, prev_feat: torch.Tensor, this_feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode quantized features ``[B, W, C]`` of both windows → motion ``([B, W, D], [B, W, D])``."""
        W = self.window
        h = self.decoder(torch.cat([prev_feat, this_feat], dim=1) + self.dec_pos_embed, self.attn_mask)
        motion = self.denormalize(h)
        return motion[:, :W], motion[:, W:]

    def decode(self, prev_bits: torch.Tensor, this_bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Motion ``([B, W, D], [B, W, D])`` of the previous and current windows from their bits."""
        return self.decode_features(
            bsq.bits_to_feature(prev_bits, self.scales), bsq.bits_to_feature(this_bits, self.scales)
        )

    def forward(self, prev: torch.Tensor, this: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass: reconstruct both windows through the quantizer (straight-through).

        Returns ``recon_prev, recon_this [B, W, D]``, ``prev_bits, this_bits [B, L, C]`` and
        the BSQ ``commit`` / ``entropy`` losses (summed over both windows).
        """
        W = self.window
        feat = self.encode_features(prev, this)
        prev_hat, prev_bits, prev_losses = bsq.quantize(feat[:, :W], self.scales)
        this_hat, this_bits, this_losses = bsq.quantize(feat[:, W:], self.scales)
        recon_prev, recon_this = self.decode_features(prev_hat, this_hat)
        return {
            "recon_prev": recon_prev,
            "recon_this": recon_this,
            "prev_bits": prev_bits,
            "this_bits": this_bits,
            "commit": prev_losses["commit"] + this_losses["commit"],
            "entropy": prev_losses["entropy"] + this_losses["entropy"],
        }
