"""Whole-utterance vs streaming generation, smoothing, silence, long audio with flat memory."""

from __future__ import annotations

import numpy as np
import pytest
from talk_helpers import (
    TINY_W2V,
    one_thread,  # noqa: F401 (fixture)
    random_model,
    speechlike,
)

from splattalk.talk.config import SMALL, TINY
from splattalk.talk.inference import frames_for, generate
from splattalk.talk.smoothing import StreamSmoother, smooth_motion
from splattalk.talk.stream import TalkStream

pytestmark = pytest.mark.usefixtures("one_thread")


def _stream(model, audio, chunk_sizes, **kw):
    stream = TalkStream(model, **kw)
    out, pos, i = [], 0, 0
    while pos < audio.shape[0]:
        n = chunk_sizes[i % len(chunk_sizes)]
        out.append(stream.push(audio[pos : pos + n]))
        pos, i = pos + n, i + 1
    out.append(stream.finish())
    return np.concatenate(out)


@pytest.mark.parametrize("seconds", [0.1, 0.35, 4.0, 9.7, 12.0])
def test_stream_equals_whole(seconds):
    model = random_model(TINY)
    audio = speechlike(seconds, seed=3)
    whole = generate(model, audio)
    assert whole.shape == (frames_for(audio.shape[0]), TINY.motion_dim)
    rng = np.random.default_rng(0)
    streamed = _stream(model, audio, list(rng.integers(1, 20000, size=50)))
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


@pytest.mark.parametrize("cfg", [SMALL, TINY_W2V], ids=["small", "wav2vec2"])
def test_stream_equals_whole_other_encoders_with_style_and_sampling(cfg):
    model = random_model(cfg)
    audio = speechlike(9.0, seed=4)
    style = np.random.default_rng(1).normal(0, 0.3, (50, cfg.motion_dim)).astype(np.float32)
    kw = dict(style=style, seed=7, temperature=0.8)
    whole = generate(model, audio, **kw)
    np.testing.assert_allclose(_stream(model, audio, [320, 16000, 777], **kw), whole, atol=1e-5)
    blocks = list(TalkStream(model, **kw).frames(audio[i : i + 4000] for i in range(0, audio.shape[0], 4000)))
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-5)
    # sampling with another seed really differs; the same seed repeats
    assert not np.allclose(generate(model, audio, style=style, seed=8, temperature=0.8), whole)
    np.testing.assert_array_equal(generate(model, audio, **kw), whole)


def test_expected_codes_decoding_streams_identically_and_differs_from_greedy():
    model = random_model(TINY)
    audio = speechlike(9.0, seed=5)
    expected = generate(model, audio, expected_codes=True)
    greedy = generate(model, audio, expected_codes=False)
    assert np.isfinite(expected).all() and not np.allclose(expected, greedy, atol=1e-4)
    np.testing.assert_array_equal(generate(model, audio), greedy)  # the tiny preset's default: off
    np.testing.assert_allclose(_stream(model, audio, [5000, 777], expected_codes=True), expected, atol=1e-5)


def test_expected_codes_for_some_channels_leave_the_others_as_greedy():
    import dataclasses

    from splattalk.talk.config import TalkConfig

    model = random_model(TINY)
    model.cfg = dataclasses.replace(TINY, expected_codes=True, expected_channels=(0, 29))
    assert TalkConfig.from_json(model.cfg.to_json()) == model.cfg
    audio = speechlike(3.5, seed=6)  # one window: the prefix (re-encoded motion) plays no part yet
    mixed, greedy = generate(model, audio), generate(model, audio, expected_codes=False)
    others = [c for c in range(TINY.motion_dim) if c not in (0, 29)]
    np.testing.assert_array_equal(mixed[:, others], greedy[:, others])
    assert not np.allclose(mixed[:, [0, 29]], greedy[:, [0, 29]], atol=1e-4)


def test_mouth_ensemble_averages_the_mouth_of_several_decodings():
    import dataclasses

    import torch

    from splattalk.talk.config import TalkConfig
    from splattalk.talk.inference import start_session, step_window, zero_jaw_twist

    model = random_model(TINY)
    mouth = (0, 5, 29)
    # decoding by hand below: without the pause gate (talk/pauses.py, tested in test_pauses.py)
    model.cfg = dataclasses.replace(
        TINY, expected_codes=True, expected_channels=mouth, mouth_samples=4, pause_closure=False
    )
    assert TalkConfig.from_json(model.cfg.to_json()) == model.cfg
    audio = speechlike(3.5, seed=6)  # one window: the prefix plays no part yet
    ens, single = generate(model, audio, smooth=False), generate(model, audio, smooth=False, mouth_samples=1)
    others = [c for c in range(TINY.motion_dim) if c not in mouth]
    np.testing.assert_allclose(ens[:, others], single[:, others], atol=1e-5)  # head and lids: the usual decoding
    assert not np.allclose(ens[:, list(mouth)], single[:, list(mouth)], atol=1e-4)
    # by hand: the usual decoding and three draws at temperature 1 from the same generator, mouth averaged
    cfg1 = dataclasses.replace(model.cfg, mouth_samples=1)
    s = start_session(model, seed=0)
    padded = np.zeros(TINY.context_samples + TINY.window_samples, np.float32)
    padded[TINY.context_samples : TINY.context_samples + audio.shape[0]] = audio
    with torch.no_grad():
        cond = model.audio_condition(torch.from_numpy(padded)[None])
        _, probs = model.sample_bits(
            cond.expand(4, -1, -1),
            s.prefix_tokens.expand(4, -1, -1),
            s.style.expand(4, -1, -1),
            True,
            torch.tensor([0.0, 1.0, 1.0, 1.0]),
            s.generator,
            return_probs=True,
        )
        _, exp = model.basic_vae.decode(s.prev_bits.expand(4, -1, -1), probs)
    np.testing.assert_allclose(ens[:, list(mouth)], exp[:, : len(ens), list(mouth)].mean(0).numpy(), atol=1e-5)
    model.cfg = cfg1
    step = step_window(model, start_session(model), torch.from_numpy(padded))
    np.testing.assert_allclose(single, zero_jaw_twist(step[: len(single)].numpy(), cfg1), atol=1e-6)
    # all draws greedy: the mean of identical decodings is the usual one; streaming matches; bad counts refused
    model.cfg = dataclasses.replace(model.cfg, mouth_samples=3, mouth_sample_temperature=0.0)
    np.testing.assert_allclose(
        generate(model, speechlike(9.0, seed=2)), generate(model, speechlike(9.0, seed=2), mouth_samples=1), atol=1e-5
    )
    model.cfg = dataclasses.replace(model.cfg, mouth_sample_temperature=1.0)
    long = speechlike(9.0, seed=2)
    np.testing.assert_allclose(_stream(model, long, [5000, 777]), generate(model, long), atol=1e-5)
    with pytest.raises(ValueError, match="mouth_samples"):
        generate(model, audio, mouth_samples=0)


def test_first_window_comes_out_as_soon_as_its_audio_is_in():
    model = random_model(TINY)
    stream = TalkStream(model)
    audio = speechlike(6.0)
    assert stream.push(audio[: TINY.window_samples - 1]).shape[0] == 0
    frames = stream.push(audio[TINY.window_samples - 1 : TINY.window_samples])
    assert frames.shape[0] == TINY.window - stream.smoother.half  # the last 4 wait for the smoother


def test_silent_audio_gives_finite_motion():
    for cfg in (TINY, TINY_W2V):
        model = random_model(cfg)
        motion = generate(model, np.zeros(16000 * 5, np.float32))
        assert motion.shape == (125, cfg.motion_dim) and np.isfinite(motion).all()
        assert (motion[:, cfg.expr_dim + 4 :] == 0).all()  # jaw opens only about its first axis
    assert generate(random_model(TINY), np.zeros(0, np.float32)).shape == (0, TINY.motion_dim)


@pytest.mark.parametrize("n", [3, 8, 9, 10, 57, 250])
def test_stream_smoother_equals_whole_sequence(n):
    rng = np.random.default_rng(n)
    motion = rng.standard_normal((n, TINY.motion_dim)).astype(np.float32)
    whole = smooth_motion(motion, TINY)
    smoother = StreamSmoother(TINY)
    parts, pos = [], 0
    for size in rng.integers(1, 30, size=100):
        if pos >= n:
            break
        parts.append(smoother.push(motion[pos : pos + size]))
        pos += size
    parts.append(smoother.finish())
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)
    assert smoother.tail.shape[0] <= smoother.span + 30


def test_smoothing_matches_artalk_channels():
    """Expression/jaw with window 5 / order 2; global rotation with 9 / order 3 (scipy savgol, interp edges)."""
    from scipy.signal import savgol_filter

    motion = np.random.default_rng(0).standard_normal((40, 106)).astype(np.float32)
    from splattalk.talk.config import OFFICIAL

    out = smooth_motion(motion, OFFICIAL)
    np.testing.assert_allclose(out[:, :100], savgol_filter(motion, 5, 2, axis=0)[:, :100], atol=1e-5)
    np.testing.assert_allclose(out[:, 103:], savgol_filter(motion, 5, 2, axis=0)[:, 103:], atol=1e-5)
    np.testing.assert_allclose(out[:, 100:103], savgol_filter(motion[:, 100:103], 9, 3, axis=0), atol=1e-5)


def test_ten_minutes_stream_with_flat_memory():
    """10 minutes of audio in 0.5-s chunks: every buffer stays bounded, and so does the process's memory."""
    model = random_model(TINY)
    stream = TalkStream(model)
    rng = np.random.default_rng(0)
    chunk, total, frames = 8000, 16000 * 600, 0
    rss, max_buffer, max_tail = [], 0, 0
    for i in range(total // chunk):
        audio = (rng.standard_normal(chunk) * 0.1).astype(np.float32)
        out = stream.push(audio)
        assert np.isfinite(out).all()
        frames += out.shape[0]
        max_buffer = max(max_buffer, stream.buffered_samples)
        max_tail = max(max_tail, stream.smoother.tail.shape[0])
        if i % 100 == 0:
            rss.append(_rss_mb())
    frames += stream.finish().shape[0]
    assert frames == 600 * 25
    assert max_buffer <= TINY.context_samples + TINY.window_samples + chunk
    assert max_tail <= TINY.window + stream.smoother.span
    assert max(rss[3:]) - rss[3] < 30, rss  # MB, after warm-up


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
