"""Pause closure (talk/pauses.py): the mouth rests in the audio's pauses, in files and streams alike."""

import dataclasses

import numpy as np
import pytest
from talk_helpers import one_thread, random_model  # noqa: F401 (fixture)

from splattalk.assets import data_path
from splattalk.talk.audio import load_audio
from splattalk.talk.config import OFFICIAL, SMALL, TINY, TalkConfig
from splattalk.talk.inference import generate
from splattalk.talk.pauses import window_gate
from splattalk.talk.stream import TalkStream

pytestmark = pytest.mark.usefixtures("one_thread")


def speech_pause_speech():
    speech = load_audio(data_path("speech", "sample_en_1.wav"))[: 16000 * 2]
    return np.concatenate([speech, np.zeros(16000, np.float32), speech])  # 2 s speech, 1 s pause, 2 s speech


def test_gate_is_shut_in_a_pause_and_open_in_speech():
    audio = speech_pause_speech()
    gate, level = window_gate(audio, len(audio) // 640, 0, -np.inf)
    assert np.all(gate[55:70] < 0.05)  # the pause's inner frames
    assert gate[10:40].mean() > 0.8 and gate[85:115].mean() > 0.8
    assert -40 < level < 0


def test_a_window_of_room_noise_after_speech_stays_shut():
    """Alone, a noise-only window would take its own noise for speech; the level carried from speech does not."""
    rng = np.random.default_rng(0)
    noise = (0.003 * rng.standard_normal(16000 * 4)).astype(np.float32)  # ≈ −50 dBFS hiss
    _, level = window_gate(speech_pause_speech(), 125, 0, -np.inf)
    carried, _ = window_gate(noise, 100, 0, level)
    alone, _ = window_gate(noise, 100, 0, -np.inf)
    assert carried.max() < 0.05
    assert alone.mean() > 0.5  # −50 dBFS hiss alone could be quiet speech
    silent, level = window_gate(np.zeros(16000 * 4, np.float32), 100, 0, -np.inf)
    faint, _ = window_gate(noise * 0.03, 100, 0, -np.inf)  # ≈ −80 dBFS
    assert silent.max() < 0.05 and faint.max() < 0.05 and level == -50.0


def test_generate_and_stream_close_the_same_frames():
    model = random_model(TINY)
    model.cfg = dataclasses.replace(TINY, closure_channels=(0, 29), closure_rest=(0.0, 0.25))
    audio = speech_pause_speech()
    shut = generate(model, audio, smooth=False)
    free = generate(model, audio, smooth=False, pause_closure=False)
    rest = np.array([0.0, 0.25])
    assert np.abs(shut[58:68][:, [0, 29]] - rest).max() < 0.05 * np.abs(free[58:68][:, [0, 29]] - rest).max()
    assert (
        np.abs(shut[10:40][:, [0, 29]] - free[10:40][:, [0, 29]]).mean() < 0.2 * np.abs(free[10:40][:, [0, 29]]).mean()
    )
    others = [c for c in range(TINY.motion_dim) if c not in (0, 29)]
    np.testing.assert_array_equal(shut[:, others], free[:, others])  # only the mouth columns, only what is shown
    stream = TalkStream(model, smooth=False)
    streamed = np.concatenate(
        [stream.push(audio[i : i + 3000]) for i in range(0, len(audio), 3000)] + [stream.finish()]
    )
    np.testing.assert_allclose(streamed, shut, atol=1e-5)


def test_closure_channels_are_the_default_heads_lip_parting_columns():
    from splattalk.talk.corpus.layout import EXPR_NAMES, JAW

    *expr, jaw = SMALL.closure_channels
    assert [EXPR_NAMES[c] for c in expr] == ["mouth_open", "upper_lip_raise", "lower_lip_depress"]
    assert jaw == JAW.start and OFFICIAL.closure_channels == (OFFICIAL.expr_dim + 3,)
    assert not OFFICIAL.pause_closure and SMALL.pause_closure  # ARTalk's own decoding stays as it was
    assert TalkConfig.from_json(SMALL.to_json()) == SMALL


def test_closure_channels_outside_the_motion_are_refused():
    model = random_model(TINY)
    model.cfg = dataclasses.replace(TINY, closure_channels=(0, 99), closure_rest=(0.0, 0.0))
    with pytest.raises(ValueError, match="closure_channels"):
        generate(model, np.zeros(16000, np.float32))
    generate(model, np.zeros(16000, np.float32), pause_closure=False)  # not needed without the gate
    model.cfg = dataclasses.replace(TINY, closure_channels=(0, 29), closure_rest=(0.0,))
    with pytest.raises(ValueError, match="one closure_rest each"):
        generate(model, np.zeros(16000, np.float32))
