"""The shipped default talk model and style clips: size, loading, and speech-driven motion on sample speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from talk_helpers import one_thread  # noqa: F401 (fixture)

from splattalk.models import DEFAULT_MODEL
from splattalk.talk.checkpoint import load_talk_checkpoint, read_talk_metadata
from splattalk.talk.config import OFFICIAL
from splattalk.talk.corpus.layout import EXPR_NAMES, JAW, MOUTH_CHANNELS, ROTATION, read_wav
from splattalk.talk.corpus.speech_checks import frame_activity, pause_frames
from splattalk.talk.corpus.styles import STYLES
from splattalk.talk.inference import generate
from splattalk.talk.style import load_style_clip

pytestmark = pytest.mark.usefixtures("one_thread")
STYLE_DIR = DEFAULT_MODEL.parent / "styles"
SPEECH = Path(__file__).resolve().parents[2] / "splattalk" / "data" / "speech" / "sample_en_1.wav"


@pytest.fixture(scope="module")
def model():
    return load_talk_checkpoint(DEFAULT_MODEL)


def test_default_model_file(model):
    assert DEFAULT_MODEL.stat().st_size <= 20 * 2**20
    assert DEFAULT_MODEL.stat().st_mode & 0o044 == 0o044  # readable by everyone, like any shipped file
    assert sum(p.numel() for p in model.parameters()) <= 10_000_000
    assert model.cfg.head_model == "default-head-v1" and model.cfg.motion_dim == len(EXPR_NAMES) + 6
    # ours decodes the mouth from expected codes (blinks and head from the chosen bits); ARTalk's decodes the bits
    assert model.cfg.expected_codes and model.cfg.expected_channels == MOUTH_CHANNELS and not OFFICIAL.expected_codes
    # ours was trained with audio dropout and ships with audio guidance; ARTalk guides the style only
    assert model.cfg.audio_cfg_scale > 1.0 and OFFICIAL.audio_cfg_scale == 1.0
    # and averages the mouth of several decodings per window; ARTalk decodes once
    assert model.cfg.mouth_samples > 1 and OFFICIAL.mouth_samples == 1
    meta = read_talk_metadata(DEFAULT_MODEL)
    assert "training" in meta and "license" in meta


def test_style_clips_one_per_corpus_style(model):
    names = sorted(p.stem for p in STYLE_DIR.glob("*.npz"))
    assert names == sorted(s.name for s in STYLES)
    for name in names:
        clip = load_style_clip(STYLE_DIR / f"{name}.npz", model.cfg.motion_dim, model.cfg.style_frames)
        assert clip.std(0).max() > 0


def test_default_model_moves_with_speech(model):
    audio = read_wav(SPEECH)
    motion = generate(model, audio)
    T = len(motion)
    active, pauses = frame_activity(audio, T), pause_frames(audio, T)
    jaw = motion[:, JAW.start]
    assert jaw[active].mean() > jaw[pauses].mean() + 0.03  # opens in speech, (nearly) closes in pauses
    assert np.degrees(motion[:, ROTATION]).std(0).max() > 0.2  # the head moves
    calm, lively = (
        generate(model, audio, style=load_style_clip(STYLE_DIR / f"{n}.npz", 32, 50)) for n in ("calm", "lively")
    )
    assert not np.allclose(calm, lively, atol=1e-3)
