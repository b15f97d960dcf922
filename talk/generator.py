"""The talk model: VAR-style autoregressive transformer over multi-scale motion bits (ARTalk).

One window of W frames is generated scale by scale. Token sequence of a window
(L = sum(scales) = 181 for ARTalk):

    [style token] + embed(inputs of scales 1..K−1)    (+ level and position embeddings)

where the input of scale k is the accumulated code of scales < k pooled to
scale k's size (``bsq.bits_to_next_inputs``), and the output at each token
gives 2 logits per bit of that token. The style token (style vector, or the
learned null style) doubles as start token. Every token is conditioned, by
AdaLN, on the audio pooled to its own scale and position. The previous
window's tokens, built the same way from its re-encoded motion, form a prefix
every layer attends to.

Attribute names follow the official checkpoint, so ``state_dict()`` of the
``official`` config has exactly its 814 keys.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from splattalk.talk import bsq
from splattalk.talk.audio_encoder import build_audio_encoder, pool_per_scale
from splattalk.talk.blocks import AdaLNBlock, AdaLNHead, KVCache, level_mask
from splattalk.talk.config import TalkConfig
from splattalk.talk.readout import MouthReadout
from splattalk.talk.style import StyleEncoder
from splattalk.talk.vqvae import MotionVQVAE


class TalkModel(nn.Module):
    """Audio encoder + style encoder + motion VQ-VAE + AR transformer."""

    def __init__(self, cfg: TalkConfig):
        super().__init__()
        self.cfg = cfg
        self.scales = tuple(cfg.scales)
        L, dim = cfg.tokens, cfg.ar_dim
        self.basic_vae = MotionVQVAE(cfg)
        self.vqfeat_embed = nn.Linear(cfg.code_dim, dim)
        self.style_encoder = StyleEncoder(cfg)
        self.style_cond_embed = nn.Linear(cfg.style_dim, dim)
        self.audio_encoder = build_audio_encoder(cfg)
        # posteriors + energy → the width the AR blocks are conditioned on (features pass as they are)
        self.audio_in = nn.Linear(self.audio_encoder.out_dim, cfg.audio_dim) if cfg.audio_posteriors else nn.Identity()
        self.readout = MouthReadout(cfg, self.audio_encoder.out_dim) if cfg.readout_channels else None
        rates = torch.linspace(0, 0.1 * cfg.ar_depth / 24, cfg.ar_depth, device="cpu").tolist()
        self.attn_blocks = nn.ModuleList(
            AdaLNBlock(dim, cfg.audio_dim, cfg.ar_heads, rates[i]) for i in range(cfg.ar_depth)
        )
        self.cond_logits_head = AdaLNHead(dim, cfg.audio_dim)
        self.logits_head = nn.Linear(dim, 2 * cfg.code_dim)
        self.null_style_cond = nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        std = math.sqrt(1 / dim / 3)
        self.pos_embed = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, L, dim), std=std))
        self.prev_pos_embed = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, L * cfg.prev_windows, dim), std=std))
        self.lvl_embed = nn.Embedding(len(self.scales), dim)
        nn.init.trunc_normal_(self.lvl_embed.weight, std=std)
        mask, level = level_mask(self.scales, L * cfg.prev_windows)
        self.register_buffer("attn_bias_for_masking", mask)
        self.register_buffer("lvl_idx", level)

    # ---- conditions -------------------------------------------------------------------------

    def style_condition(
        self, clip: torch.Tensor | None, cfg_scale: float | None = None, batch: int = 1
    ) -> torch.Tensor:
        """Style token ``[B, 1, ar_dim]`` from ``clip: [B, style_frames, D]`` (None: the null style).

        Guidance in embedding space, as ARTalk: ``s·style + (1 − s)·null`` with s = ``cfg_scale``.
        """
        if clip is None:
            return self.null_style_cond.expand(batch, -1, -1)
        s = self.cfg.cfg_scale if cfg_scale is None else cfg_scale
        style = self.style_cond_embed(self.style_encoder(clip))[:, None]
        return style * s + self.null_style_cond * (1.0 - s)

    def audio_condition(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio: [B, context + W·640]`` samples → per-token condition ``[B, L, audio_dim]``."""
        return self.condition_from_features(self.audio_encoder(audio))

    def condition_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        """The audio encoder's output ``[B, W, F]`` → per-token condition ``[B, L, audio_dim]``."""
        return pool_per_scale(self.audio_in(feat), self.scales)

    def window_tokens(self, bits: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Input tokens ``[B, L, ar_dim]`` (no position embedding) of a window whose bits are ``[B, L, C]``."""
        return torch.cat([style, self.vqfeat_embed(bsq.bits_to_next_inputs(bits, self.scales))], dim=1)

    def level_pos(self) -> torch.Tensor:
        return self.lvl_embed(self.lvl_idx) + self.pos_embed

    def prefix_input(self, prefix_tokens: torch.Tensor) -> torch.Tensor:
        """``[B, L·prev_windows, ar_dim]`` tokens of previous windows (oldest first) → prefix the layers see."""
        level = self.lvl_embed(self.lvl_idx).repeat(1, self.cfg.prev_windows, 1)
        return prefix_tokens + level + self.prev_pos_embed

    # ---- training -----------------------------------------------------------------------------

    def forward(
        self, audio_cond: torch.Tensor, bits: torch.Tensor, prefix_tokens: torch.Tensor, style: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced logits ``[B, L, C, 2]`` for target ``bits: [B, L, C]``.

        ``audio_cond: [B, L, audio_dim]`` (:meth:`audio_condition`), ``prefix_tokens:
        [B, L·prev_windows, ar_dim]`` (:meth:`window_tokens` of the previous windows),
        ``style: [B, 1, ar_dim]`` (:meth:`style_condition`; the null style for dropout).
        Cross-entropy of these logits against ``bits`` is the AR training loss.
        """
        x = self.window_tokens(bits, style) + self.level_pos()
        prefix = self.prefix_input(prefix_tokens)
        for block in self.attn_blocks:
            x = block(x, audio_cond, prefix=prefix, mask=self.attn_bias_for_masking)
        return self._logits(x, audio_cond)

    def _logits(
        self, x: torch.Tensor, cond: torch.Tensor | None, modulation: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = self.logits_head(self.cond_logits_head(x, cond, modulation))
        return logits.view(x.shape[0], x.shape[1], -1, 2)

    # ---- inference ----------------------------------------------------------------------------

    @torch.no_grad()
    def sample_bits(
        self,
        audio_cond: torch.Tensor,
        prefix_tokens: torch.Tensor,
        style: torch.Tensor,
        use_cache: bool = True,
        temperature: float | torch.Tensor = 0.0,
        generator: torch.Generator | None = None,
        return_probs: bool = False,
        audio_scale: float = 1.0,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Generate the bits ``[B, L, C]`` of one window, coarse scale to fine.

        ``temperature`` 0 is greedy per-bit decoding (ARTalk); above 0 each bit is
        sampled from its softmax at that temperature using ``generator`` (a ``[B]`` tensor: one per item).
        ``use_cache=False`` recomputes the whole sequence at each scale, as the
        official code does; with the cache each token is computed once.
        ``return_probs`` also returns each bit's probability of being 1 ``[B, L, C]``
        (given the bits chosen at coarser scales), for expected-code decoding.
        ``audio_scale`` ≠ 1 guides the logits away from those of the null (all-zero) audio
        condition (:attr:`TalkConfig.audio_cfg_scale`); both branches continue from the same bits.
        """
        B = style.shape[0]
        guide = _audio_guidance(audio_scale, B)
        if guide is not None:  # the null-audio branch rides along as a second half of the batch
            audio_cond = torch.cat([audio_cond, torch.zeros_like(audio_cond)])
            prefix_tokens, style = prefix_tokens.repeat(2, 1, 1), style.repeat(2, 1, 1)
        prefix = self.prefix_input(prefix_tokens)
        pos = self.level_pos()
        if not use_cache:
            bits, probs = self._sample_recompute(audio_cond, prefix, style, pos, temperature, generator, guide)
            return (bits, probs) if return_probs else bits
        cache = KVCache([block.prefix_cache(prefix) for block in self.attn_blocks])
        mods = [block.modulation(audio_cond) for block in self.attn_blocks]
        head_mod = self.cond_logits_head.modulation(audio_cond)
        T = self.scales[-1]
        acc = torch.zeros(B, T, self.cfg.code_dim, device=style.device)
        x_in, start, all_bits, all_probs = style, 0, [], []
        for k, n in enumerate(self.scales):
            sl = slice(start, start + n)
            x = x_in + pos[:, sl]
            for block, layer_cache, mod in zip(self.attn_blocks, cache.layers, mods):
                x = block(x, None, cache=layer_cache, modulation=mod[:, sl])
            logits = self._logits(x, None, head_mod[:, sl])
            if guide is not None:
                logits = guide(logits)
            bits = _choose(logits, temperature, generator)
            all_bits.append(bits)
            all_probs.append(_prob_one(logits))
            if k + 1 < len(self.scales):
                acc = acc + bsq.upsample(bsq.bits_to_codes(bits), T)
                x_in = self.vqfeat_embed(bsq.pool(acc, self.scales[k + 1]))
                if guide is not None:
                    x_in = x_in.repeat(2, 1, 1)
            start += n
        bits = torch.cat(all_bits, dim=1)
        return (bits, torch.cat(all_probs, dim=1)) if return_probs else bits

    def _sample_recompute(
        self, audio_cond, prefix, style, pos, temperature, generator, guide=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_in, probs = style, []
        for k in range(len(self.scales)):
            n = sum(self.scales[: k + 1])
            x, cond = x_in + pos[:, :n], audio_cond[:, :n]
            mask = self.attn_bias_for_masking[:, :, :n, : prefix.shape[1] + n]
            for block in self.attn_blocks:
                x = block(x, cond, prefix=prefix, mask=mask)
            logits = self._logits(x, cond)
            if guide is not None:
                logits = guide(logits)
            bits = _choose(logits, temperature, generator)
            probs.append(_prob_one(logits[:, n - self.scales[k] :]))
            if k + 1 < len(self.scales):
                nxt = self.vqfeat_embed(bsq.bits_to_next_inputs(bits, self.scales, upto=k + 1))
                x_in = torch.cat([style, nxt.repeat(style.shape[0] // nxt.shape[0], 1, 1)], dim=1)
        return bits, torch.cat(probs, dim=1)


def _audio_guidance(scale: float, batch: int):
    """None for ``scale`` 1; else a function mapping logits ``[2B, …]`` (audio branch, then null-audio
    branch) to the guided logits ``[B, …]``."""
    if scale == 1.0:
        return None
    return lambda logits: logits[batch:] + scale * (logits[:batch] - logits[batch:])


def _prob_one(logits: torch.Tensor) -> torch.Tensor:
    """Probability of each bit being 1, ``[B, n, C]``, from logits ``[B, n, C, 2]`` (temperature 1)."""
    return torch.softmax(logits.float(), dim=-1)[..., 1]


def _choose(logits: torch.Tensor, temperature: float | torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Bits ``[B, n, C]`` from logits ``[B, n, C, 2]``: argmax, or sampling at ``temperature`` (a number, or
    ``[B]`` one per batch item, 0 meaning argmax for that item)."""
    if not torch.is_tensor(temperature):
        if temperature <= 0.0:
            return logits.argmax(dim=-1)
        temperature = torch.full((logits.shape[0],), float(temperature))
    t = temperature.to(logits.device, torch.float32).view(-1, 1, 1)
    p1 = torch.softmax(logits.float() / t.clamp_min(1e-6)[..., None], dim=-1)[..., 1]
    u = torch.rand(p1.shape, generator=generator, device=p1.device)
    return torch.where(t > 0, (u < p1).long(), logits.argmax(dim=-1))


def rebuilt(model: TalkModel, cfg: TalkConfig, fresh: tuple[str, ...]) -> TalkModel:
    """A model of ``cfg`` holding ``model``'s weights, on its device; only the parameters under the prefixes
    ``fresh`` (modules that ``cfg`` adds) keep their new initialisation. Anything else missing or left over fails."""
    out = TalkModel(cfg).to(next(model.parameters()).device)
    missing, unexpected = out.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith(fresh) for k in missing):
        raise ValueError(f"rebuilding the talk model: unexpected keys {unexpected}, missing {missing}")
    return out
