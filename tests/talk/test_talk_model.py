"""Model invariants: BSQ/VQ round trips, the two attention masks, KV cache, teacher forcing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from talk_helpers import (
    one_thread,  # noqa: F401 (fixture)
    random_model,
    speechlike,
)

from splattalk.talk import bsq
from splattalk.talk.audio_encoder import log_mel, mel_filterbank, pool_per_scale
from splattalk.talk.blocks import level_mask
from splattalk.talk.config import OFFICIAL, SMALL, TINY
from splattalk.talk.vqvae import block_mask

SCALES = (1, 5, 25, 50, 100)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_bsq_codes_and_bits_round_trip():
    f = torch.randn(3, 7, 32)
    codes, bits = bsq.bsq(f)
    assert torch.allclose(codes.norm(dim=-1), torch.ones(3, 7))  # on the unit sphere
    torch.testing.assert_close(bsq.bits_to_codes(bits), codes)  # equal up to the straight-through rounding
    assert torch.equal(bits, (f > 0).long())
    _, again = bsq.bsq(bsq.bits_to_codes(bits))
    assert torch.equal(again, bits)


def test_multiscale_quantize_is_consistent_and_refines():
    torch.manual_seed(0)
    f = torch.randn(2, 100, 32) * 0.1
    f_hat, bits, losses = bsq.quantize(f, SCALES)
    assert bits.shape == (2, 181, 32) and set(bits.unique().tolist()) <= {0, 1}
    assert torch.allclose(bsq.bits_to_feature(bits, SCALES), f_hat, atol=1e-6)
    # every scale re-reads the residual: the quantized feature is a better fit than the first scale alone
    coarse = bsq.upsample(bsq.bits_to_codes(bits[:, :1]), 100)
    assert (f_hat - f).norm() < (coarse - f).norm()
    assert losses["commit"] > 0 and torch.isfinite(losses["entropy"])


def test_next_inputs_match_definition():
    bits = torch.randint(0, 2, (1, 181, 32))
    nxt = bsq.bits_to_next_inputs(bits, SCALES)
    assert nxt.shape == (1, 180, 32)
    # scale 2's input (25 tokens) = codes of scales 0 and 1 upsampled to 100, summed, area-pooled to 25
    codes = bsq.bits_to_codes(bits)
    acc = bsq.upsample(codes[:, :1], 100) + bsq.upsample(codes[:, 1:6], 100)
    torch.testing.assert_close(nxt[:, 5:30], acc.reshape(1, 25, 4, 32).mean(2))
    # a prefix of scales gives the prefix of the inputs
    torch.testing.assert_close(bsq.bits_to_next_inputs(bits, SCALES, upto=2), nxt[:, :30])


def test_vqvae_round_trip_of_its_own_decodings():
    """decode(bits) → encode → decode is a fixed point after one pass for most bits (sanity, random weights)."""
    model = random_model(TINY)
    vae = model.basic_vae
    motion = torch.randn(1, 100, TINY.motion_dim) * 0.3
    prev_bits, this_bits = vae.encode(torch.zeros_like(motion), motion)
    assert prev_bits.shape == this_bits.shape == (1, 181, 32)
    prev_m, this_m = vae.decode(prev_bits, this_bits)
    assert prev_m.shape == this_m.shape == (1, 100, TINY.motion_dim) and torch.isfinite(this_m).all()
    out = vae(torch.zeros_like(motion), motion)
    torch.testing.assert_close(out["recon_this"], this_m)
    assert torch.equal(out["this_bits"], this_bits)


def test_vqvae_block_mask():
    mask = block_mask(100)[0, 0]
    assert torch.isinf(mask[:100, 100:]).all() and (mask[:100, :100] == 0).all() and (mask[100:] == 0).all()
    vae = random_model(TINY).basic_vae
    prev, this = torch.randn(1, 100, 32), torch.randn(1, 100, 32)
    base = vae.encode_features(prev, this)
    changed = vae.encode_features(prev, this + 1.0)
    torch.testing.assert_close(changed[:, :100], base[:, :100])  # previous window never sees the current one
    assert not torch.allclose(changed[:, 100:], base[:, 100:])
    # ... and the current one sees the previous
    assert not torch.allclose(vae.encode_features(prev + 1.0, this)[:, 100:], base[:, 100:])
    torch.testing.assert_close(vae.encode_features(prev)[:, :100], base[:, :100])


def test_level_mask():
    mask, level = level_mask(SCALES, 181)
    assert mask.shape == (1, 1, 181, 362) and level.shape == (1, 181)
    assert (mask[0, 0, :, :181] == 0).all()  # the prefix is visible to all
    m = mask[0, 0, :, 181:]
    lv = level[0]
    for i in (0, 3, 40, 180):
        for j in (0, 5, 6, 30, 31, 180):
            assert (m[i, j] == 0) == bool(lv[i] >= lv[j])


def test_kv_cache_matches_recompute_and_teacher_forcing():
    model = random_model(TINY)
    torch.manual_seed(1)
    audio = torch.from_numpy(speechlike(5.0)[: TINY.context_samples + TINY.window_samples])[None]
    cond = model.audio_condition(audio)
    style = model.style_condition(torch.randn(1, 50, TINY.motion_dim))
    prev_bits = torch.randint(0, 2, (1, 181, 32))
    prefix = model.window_tokens(prev_bits, style)
    cached, probs = model.sample_bits(cond, prefix, style, use_cache=True, return_probs=True)
    recomputed, probs_recomputed = model.sample_bits(cond, prefix, style, use_cache=False, return_probs=True)
    assert torch.equal(cached, recomputed)
    torch.testing.assert_close(probs, probs_recomputed, atol=1e-5, rtol=0)
    # greedy bits are the likelier side of each probability; probabilities decode to expected codes
    assert probs.shape == cached.shape and torch.equal(cached, (probs > 0.5).long())
    assert torch.equal(bsq.bits_to_codes(torch.full((2,), 0.5)), torch.zeros(2))
    torch.testing.assert_close(bsq.bits_to_codes(probs.round()), bsq.bits_to_codes(cached))
    # teacher forcing on the generated bits gives logits whose argmax reproduces them
    logits = model(cond, cached, prefix, style)
    assert logits.shape == (1, 181, 32, 2)
    assert torch.equal(logits.argmax(-1), cached)


def test_audio_guidance_combines_the_audio_and_null_audio_logits():
    model = random_model(TINY)
    torch.manual_seed(2)
    audio = torch.from_numpy(speechlike(5.0, seed=3)[: TINY.context_samples + TINY.window_samples])[None]
    cond = model.audio_condition(audio)
    style = model.style_condition(None)
    prefix = model.window_tokens(torch.randint(0, 2, (1, 181, 32)), style)
    plain = model.sample_bits(cond, prefix, style)
    assert torch.equal(model.sample_bits(cond, prefix, style, audio_scale=1.0), plain)
    # scale 0 is the null-audio branch alone: the model run on all-zero audio features
    assert torch.equal(
        model.sample_bits(cond, prefix, style, audio_scale=0.0),
        model.sample_bits(torch.zeros_like(cond), prefix, style),
    )
    cached, p_cached = model.sample_bits(cond, prefix, style, return_probs=True, audio_scale=2.5)
    recomputed, p_recomputed = model.sample_bits(
        cond, prefix, style, use_cache=False, return_probs=True, audio_scale=2.5
    )
    assert torch.equal(cached, recomputed) and not torch.equal(cached, plain)
    torch.testing.assert_close(p_cached, p_recomputed, atol=1e-5, rtol=0)
    # the first scale's guided logits by hand (its inputs do not depend on earlier choices)
    l_audio, l_null = (
        model(cond, cached, prefix, style)[:, :1],
        model(torch.zeros_like(cond), cached, prefix, style)[:, :1],
    )
    guided = l_null + 2.5 * (l_audio - l_null)
    torch.testing.assert_close(p_cached[:, :1], torch.softmax(guided, -1)[..., 1], atol=1e-5, rtol=0)


def test_audio_condition_pooling_and_frame_rates():
    x = torch.arange(8.0).view(1, 8, 1)
    pooled = pool_per_scale(x, (1, 2, 4))
    torch.testing.assert_close(pooled[0, :, 0], torch.tensor([3.5, 1.5, 5.5, 0.5, 2.5, 4.5, 6.5]))
    model = random_model(TINY)
    feats = model.audio_encoder(torch.zeros(1, TINY.context_samples + TINY.window_samples))
    assert feats.shape == (1, 100, TINY.audio_dim)  # 25 fps at the finest scale
    fb = mel_filterbank(40)
    assert fb.shape == (201, 40) and (fb >= 0).all()
    mel = log_mel(torch.zeros(1, 1600), torch.from_numpy(fb), torch.hann_window(400))
    assert mel.shape == (1, 10, 40) and torch.isfinite(mel).all()


def test_style_guidance_formula():
    model = random_model(TINY)
    clip = torch.randn(1, 50, TINY.motion_dim)
    s1 = model.style_condition(clip, cfg_scale=1.0)
    s2 = model.style_condition(clip, cfg_scale=2.0)
    torch.testing.assert_close(s2, 2 * s1 - model.null_style_cond)
    assert torch.equal(model.style_condition(None), model.null_style_cond)


@pytest.mark.parametrize("cfg,limit", [(SMALL, 10e6), (TINY, 1e6)])
def test_preset_sizes(cfg, limit):
    from splattalk.talk.checkpoint import expected_layout

    n = sum(int(np.prod(s)) for k, (s, _) in expected_layout(cfg).items() if "mask" not in k and "lvl_idx" not in k)
    assert n <= limit
    assert cfg.motion_dim == 32 and cfg.expr_dim == 26 and cfg.head_model == "default-head-v1"
    assert OFFICIAL.motion_dim == 106 and OFFICIAL.head_model == "flame2020" and OFFICIAL.tokens == 181
