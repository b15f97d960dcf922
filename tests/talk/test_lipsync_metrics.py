"""The real-speech lip-sync metrics on synthetic sequences with known answers."""

import numpy as np
import pytest

from splattalk.talk.metrics import av_offset, closed_agreement, lagged_pearson, loudness_envelope, pearson, shifted


def _signal(T=200, seed=0):
    rng = np.random.default_rng(seed)
    return np.convolve(rng.standard_normal(T + 8), np.ones(5) / 5, mode="valid")[:T]


def test_identical_sequences_correlate_one_at_lag_zero():
    x = _signal()
    r, lag = lagged_pearson(x, x, max_lag=2)
    assert r == pytest.approx(1.0, abs=1e-12)
    assert lag == 0


@pytest.mark.parametrize("k", [1, -1, 2])
def test_lag_search_finds_a_shift(k):
    truth = _signal(seed=1)
    pred = np.roll(truth, -k)  # pred[t] = truth[t + k]: the prediction leads by k frames
    r, lag = lagged_pearson(pred, truth, max_lag=2)
    assert lag == k
    assert r > 0.99
    assert pearson(pred, truth) < r  # without the lag it is worse
    np.testing.assert_allclose(shifted(pred, lag)[5:-5], truth[5:-5])


def test_lag_outside_the_window_is_not_found():
    truth = _signal(seed=2)
    r, _ = lagged_pearson(np.roll(truth, -4), truth, max_lag=2)
    assert r < 0.9


def test_an_out_of_sync_clip_is_found_and_searched_around():
    # a clip whose sound was muxed 5 frames late: the mouth (truth) moves 5 frames before its audio
    mouth = _signal(seed=4)
    audio = np.roll(mouth, 5) + 0.3 * _signal(seed=5)  # loudness follows the mouth, late, with noise
    model = np.roll(mouth, 5)  # a model that is right about the sound it hears
    offset, r_sync = av_offset(audio, mouth, search=8)
    assert offset == -5 and r_sync > 0.8
    assert lagged_pearson(model, mouth, max_lag=2)[0] < 0.5  # ±2 around 0 misses it
    r, lag = lagged_pearson(model, mouth, max_lag=2, centre=offset)
    assert lag == -5 and r == pytest.approx(1.0, abs=1e-9)
    assert av_offset(audio, mouth, search=5)[0] == 0  # the peak at the search's edge is not claimed
    with pytest.raises(ValueError):  # the search must fit in the clip
        lagged_pearson(model[:20], mouth[:20], max_lag=2, centre=9)


def test_pearson_ignores_nan_frames_and_constant_is_nan():
    x = _signal(seed=3)
    y = 2 * x + 1
    y[10] = np.nan
    assert pearson(x, y) == pytest.approx(1.0)
    assert np.isnan(pearson(np.ones(10), np.arange(10.0)))
    with pytest.raises(ValueError):
        lagged_pearson(np.zeros(4), np.zeros(4), max_lag=2)


def test_closed_agreement_hand_made():
    true_closed = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    pred_closed = np.array([1, 0, 1, 0, 1, 1, 0, 0, 0, 0], bool)
    frac, n = closed_agreement(pred_closed, true_closed)
    assert n == 4 and frac == pytest.approx(0.5)  # closed where ours is closed elsewhere does not count
    frac, n = closed_agreement(pred_closed, np.zeros(10, bool))
    assert n == 0 and np.isnan(frac)


def test_loudness_envelope_frames():
    sr, hop = 16_000, 640
    audio = np.concatenate([np.zeros(hop), 0.5 * np.ones(hop), np.zeros(hop // 2)])
    env = loudness_envelope(audio, 4)
    np.testing.assert_allclose(env, [0.0, 0.5, 0.0, 0.0])
    assert sr // 25 == hop
