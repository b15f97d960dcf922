"""`splattalk adapt RUN` on a synthetic run: writes the adapted read-out, reuses it, refuses what it cannot use."""

import json

import numpy as np
import pytest
import torch
from talk_helpers import save_tracked_run

from splattalk.adapt import AdaptCommand, run
from splattalk.assets import data_path
from splattalk.errors import SplattalkError
from splattalk.models import DEFAULT_MODEL, adapted_model, paths, resolve_model
from splattalk.talk.audio import load_audio

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="the built-in talk model is not built")


def _run(tmp_path, audio_path, head_model="default-head-v1", T=None):
    audio = load_audio(audio_path)
    T = T or len(audio) // 640
    rng = np.random.default_rng(0)
    env = np.convolve(np.abs(rng.standard_normal(T)), np.ones(5) / 5, mode="same")
    expr = np.zeros((T, 26), np.float32)
    expr[:, 0] = env
    jaw = np.zeros((T, 3), np.float32)
    jaw[:, 0] = 0.1 * env
    folder = tmp_path / "run"
    save_tracked_run(folder, expr, jaw, head_model=head_model, static_offset=np.zeros((4666, 3), np.float32))
    (folder / "tracking" / "config.json").write_text(json.dumps({"video": str(audio_path)}))
    return folder


def test_adapt_writes_reuses_and_applies(tmp_path, capsys):
    folder = _run(tmp_path, data_path("speech", "sample_en_1.wav"))
    assert run(AdaptCommand(folder, epochs=2)) == 0
    out = paths(folder)
    assert out["readout"].is_file() and not out["state"].exists()
    report = json.loads(out["report"].read_text())
    assert np.isfinite(report["heldout_r_before"]) and np.isfinite(report["heldout_r_after"])
    assert run(AdaptCommand(folder, epochs=2)) == 0  # second call: kept
    assert "exists" in capsys.readouterr().out
    base = resolve_model(None)
    tuned = adapted_model(folder, base)
    assert tuned is not base
    assert any(not torch.equal(v, base.readout.state_dict()[k]) for k, v in tuned.readout.state_dict().items())


def test_adapt_without_speech_takes_only_the_style(tmp_path, capsys):
    import soundfile as sf

    wav = tmp_path / "silence.wav"
    sf.write(wav, np.zeros(16000 * 4, np.float32), 16000)
    folder = _run(tmp_path, wav)
    assert run(AdaptCommand(folder, epochs=1)) == 0
    assert "only its motion style is taken" in capsys.readouterr().out
    assert not paths(folder)["readout"].exists()


def test_adapt_refuses_another_head_model(tmp_path):
    folder = _run(tmp_path, data_path("speech", "sample_en_1.wav"), head_model="flame2023")
    with pytest.raises(SplattalkError, match="head model"):
        run(AdaptCommand(folder, epochs=1))


def test_adapt_takes_the_videos_audio_offset_out_of_what_it_learns(tmp_path, monkeypatch, capsys):
    """A video whose sound comes 5 frames (200 ms) after its mouth: the offset is found from the loudness, the
    pairs adapt learns from are back in sync, and the held-out r is searched around the offset."""
    import splattalk.adapt as adapt
    from splattalk.talk.metrics import loudness_envelope, pearson, shifted

    wav = data_path("speech", "sample_en_1.wav")
    audio = load_audio(wav)
    T = len(audio) // 640
    loud = loudness_envelope(audio, T)
    loud = (loud / loud.max()).astype(np.float32)
    late = shifted(loud, -5)  # mouth[t] = loudness[t + 5]: the mouth moves 5 frames before its sound
    folder = tmp_path / "run"
    expr = np.zeros((T, 26), np.float32)
    expr[:, 0] = late
    jaw = np.zeros((T, 3), np.float32)
    jaw[:, 0] = 0.2 * late
    save_tracked_run(folder, expr, jaw, static_offset=np.zeros((4666, 3), np.float32))
    (folder / "tracking" / "config.json").write_text(json.dumps({"video": str(wav)}))
    learned = []
    real_finetune = adapt.finetune_readout
    monkeypatch.setattr(
        adapt,
        "finetune_readout",
        lambda model, clips, *a, **k: (learned.extend(clips), real_finetune(model, clips, *a, **k))[1],
    )
    assert run(AdaptCommand(folder, epochs=1)) == 0
    assert "200 ms behind its picture" in capsys.readouterr().out
    report = json.loads(paths(folder)["report"].read_text())
    assert report["av_offset_frames"] == -5
    ((clip_audio, motion),) = learned
    n = len(motion)
    jaw_learned = motion[:, -3]  # tracked_motion's layout: expression, head rotation, jaw
    assert pearson(jaw_learned, loud[:n]) > 0.99  # back in sync with the sound
    assert pearson(late[:n], loud[:n]) < 0.9  # as tracked it was not
