"""close_in_pauses: mouth channels go to zero in a pause and stay in speech."""

import numpy as np

from splattalk.assets import data_path
from splattalk.talk.audio import load_audio
from splattalk.talk.training.closure import close_in_pauses


def test_mouth_closes_in_a_pause_only():
    speech = load_audio(data_path("speech", "sample_en_1.wav"))[: 16000 * 2]
    audio = np.concatenate([speech, np.zeros(16000, np.float32), speech])  # 2 s speech, 1 s pause, 2 s speech
    T = len(audio) // 640
    motion = np.ones((T, 32), np.float32)
    out = close_in_pauses(motion, audio, channels=[0, 29])
    pause = slice(50 + 5, 75 - 5)  # the pause's inner frames
    assert np.all(out[pause, 0] < 0.05) and np.all(out[pause, 29] < 0.05)
    assert np.all(out[:, 1] == 1.0)  # other channels untouched
    assert np.mean(out[10:40, 0]) > 0.8  # speech keeps its mouth
    assert motion[60, 0] == 1.0  # input not modified
