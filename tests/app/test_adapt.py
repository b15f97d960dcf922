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
