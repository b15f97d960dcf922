"""Mouth read-out: frames stacked within the window, a seeded training whose loss falls, the blend in ``generate``
(weight 0 = the generator alone, weight 1 = the read-out alone), a file round trip, clear refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from talk_helpers import one_thread  # noqa: F401 (fixture)
from talk_toy_corpus import toy_utterance

from splattalk.errors import SplattalkError
from splattalk.talk.checkpoint import load_talk_checkpoint, save_talk_checkpoint
from splattalk.talk.config import TINY
from splattalk.talk.generator import TalkModel
from splattalk.talk.inference import generate
from splattalk.talk.readout import context_stack
from splattalk.talk.training.readout import fit_readout, window_features

pytestmark = pytest.mark.usefixtures("one_thread")

CHANNELS = (3, 7, 29)


def test_context_stack_repeats_the_window_edges():
    feat = torch.arange(5.0).view(1, 5, 1)
    out = context_stack(feat, 2)
    assert out.shape == (1, 5, 5)
    assert (
        out[0, 0].tolist() == [0, 0, 0, 1, 2]
        and out[0, 4].tolist() == [2, 3, 4, 4, 4]
        and out[0, 2].tolist() == [0, 1, 2, 3, 4]
    )


@pytest.fixture(scope="module")
def posterior_model():
    torch.manual_seed(0)
    return TalkModel(dataclasses.replace(TINY, audio_posteriors=True)).eval()


def test_readout_learns_and_generate_blends_it(posterior_model, tmp_path):
    """Training drives the read-out's loss down and repeats with the seed; ``generate`` blends its mouth in."""
    model, context = posterior_model, 2
    rng = np.random.default_rng(0)
    proj = rng.standard_normal((model.audio_encoder.out_dim, len(CHANNELS)))
    clips = []
    for seed in range(4):
        audio, motion = toy_utterance(6.0, seed=seed, style=0)  # 150 frames: a full window and half of one
        feat = (
            window_features(model, audio, len(motion))
            .reshape(-1, model.audio_encoder.out_dim)[: len(motion)]
            .double()
            .numpy()
        )
        motion = motion.copy()
        motion[:, CHANNELS] = np.tanh(feat @ proj)  # a function of each frame's posteriors
        clips.append((audio, motion))
    fitted, summary = fit_readout(model, clips, context, 0.5, CHANNELS, hidden=32, epochs=40, batch_size=64, lr=3e-3)
    assert summary["frames"] == 600 and summary["last_loss"] < 0.5 * summary["first_loss"], summary
    again, _ = fit_readout(model, clips, context, 0.5, CHANNELS, hidden=32, epochs=40, batch_size=64, lr=3e-3)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in fitted.state_dict().items())  # seeded
    assert all(
        torch.equal(v, model.state_dict()[k]) for k, v in fitted.state_dict().items() if not k.startswith("readout.")
    )

    audio, motion = clips[3]
    raw = {"smooth": False, "pause_closure": False}  # the blend itself, not the pause gate after it
    alone = generate(fitted, audio, readout_weight=0.0, **raw)
    reads = generate(fitted, audio, readout_weight=1.0, **raw)
    half = generate(fitted, audio, **raw)  # the model's weight: 0.5
    assert np.allclose(alone, generate(model, audio, **raw), atol=1e-5)  # weight 0: the generator as before
    with torch.no_grad():
        predicted = (
            fitted.readout(window_features(fitted, audio, len(motion)))
            .reshape(-1, len(CHANNELS))[: len(motion)]
            .numpy()
        )
    assert np.allclose(reads[:, CHANNELS], predicted, atol=1e-4)  # weight 1: the read-out's mouth
    first = slice(0, fitted.cfg.window)  # the first window: both continue from the same prefix
    assert np.allclose(half[first, CHANNELS], 0.5 * (alone[first, CHANNELS] + reads[first, CHANNELS]), atol=1e-4)
    others = [c for c in range(motion.shape[1]) if c not in CHANNELS]
    assert np.allclose(half[first][:, others], alone[first][:, others], atol=1e-5)

    path = tmp_path / "m.safetensors"
    save_talk_checkpoint(fitted, path, {})
    loaded = load_talk_checkpoint(path)
    assert (
        loaded.cfg.readout_channels == CHANNELS and loaded.cfg.readout_weight == 0.5 and loaded.cfg.readout_hidden == 32
    )
    assert np.array_equal(generate(loaded, audio), generate(fitted, audio))


def test_readout_refusals(posterior_model):
    audio, motion = toy_utterance(2.0, seed=1, style=0)
    with pytest.raises(SplattalkError, match="posteriors"):
        fit_readout(TalkModel(TINY), [(audio, motion)], 2, 0.5, CHANNELS)
    with pytest.raises(SplattalkError, match="weight"):
        fit_readout(posterior_model, [(audio, motion)], 2, 1.5, CHANNELS)
    with pytest.raises(ValueError, match="read-out"):
        generate(posterior_model, audio, readout_weight=0.5)  # no read-out in this model
