"""``splattalk talk``: output file, checkpoints, style clips, and its error messages."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from talk_helpers import TINY_W2V, one_thread, random_model, speechlike  # noqa: F401

from splattalk.cli import main
from splattalk.talk import checkpoint as ckpt
from splattalk.talk.config import TINY
from splattalk.talk.style import load_style_clip

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(["talk", *map(str, args)])
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture
def speech(tmp_path):
    path = tmp_path / "speech.wav"
    sf.write(path, speechlike(5.3), 16000)
    return path


def test_talk_writes_motion_npz(tmp_path, speech, capsys):
    model_path = tmp_path / "tiny.safetensors"
    ckpt.save_talk_checkpoint(random_model(TINY), model_path)
    out = tmp_path / "out" / "motion.npz"
    code, stdout, _ = _run([speech, "--out", out, "--checkpoint", model_path], capsys)
    assert code == 0 and "wrote" in stdout
    with np.load(out) as data:
        assert data["motion"].shape == (133, 32) and data["motion"].dtype == np.float32
        assert int(data["fps"]) == 25 and str(data["head_model"]) == "default-head-v1" and int(data["expr_dim"]) == 26
        assert np.isfinite(data["motion"]).all()


def test_mouth_samples_option(tmp_path, speech, capsys):
    model_path = tmp_path / "tiny.safetensors"
    ckpt.save_talk_checkpoint(random_model(TINY), model_path)
    one, four = tmp_path / "one.npz", tmp_path / "four.npz"
    assert _run([speech, "--out", one, "--checkpoint", model_path], capsys)[0] == 0
    assert _run([speech, "--out", four, "--checkpoint", model_path, "--mouth-samples", 4], capsys)[0] == 0
    with np.load(one) as a, np.load(four) as b:
        assert a["motion"].shape == b["motion"].shape and not np.allclose(a["motion"], b["motion"], atol=1e-4)
    code, _, err = _run(
        [speech, "--out", tmp_path / "bad.npz", "--checkpoint", model_path, "--mouth-samples", 0], capsys
    )
    assert code == 2 and "--mouth-samples must be at least 1" in err and "Traceback" not in err
    assert not (tmp_path / "bad.npz").exists()


def test_readout_weight_option(tmp_path, speech, capsys):
    """``--readout-weight`` on a model without a mouth read-out, or out of [0, 1], is refused clearly;
    0 is the generator."""
    model_path = tmp_path / "tiny.safetensors"
    ckpt.save_talk_checkpoint(random_model(TINY), model_path)
    for weight, message in ((0.5, "no mouth read-out"), (1.5, "must be in [0, 1]")):
        code, _, err = _run(
            [speech, "--out", tmp_path / "bad.npz", "--checkpoint", model_path, "--readout-weight", weight], capsys
        )
        assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "bad.npz").exists()
    assert (
        _run([speech, "--out", tmp_path / "ok.npz", "--checkpoint", model_path, "--readout-weight", 0], capsys)[0] == 0
    )


def test_official_layout_checkpoint_and_style_pt(tmp_path, speech, capsys, monkeypatch):
    """A .pt in the official layout is loaded strictly; an ARTalk-style .pt clip is accepted as --style."""
    monkeypatch.setattr(ckpt, "OFFICIAL", TINY_W2V)
    model_path = tmp_path / "ARTalk_wav2vec.pt"
    ckpt.save_official_state_dict(random_model(TINY_W2V), model_path, weight_norm="weight_g")
    style = tmp_path / "natural_0.pt"
    torch.save(torch.randn(50, 106) * 0.1, style)
    out = tmp_path / "m.npz"
    code, _, err = _run([speech, "--out", out, "--checkpoint", model_path, "--style", style], capsys)
    assert code == 0, err
    with np.load(out) as data:
        assert (
            data["motion"].shape == (133, 106)
            and str(data["head_model"]) == "flame2020"
            and int(data["expr_dim"]) == 100
        )


def test_missing_default_model_says_so(tmp_path, speech, capsys, monkeypatch, isolated_assets):
    monkeypatch.setattr("splattalk.models.DEFAULT_MODEL", tmp_path / "default_talk.safetensors")
    code, _, err = _run([speech], capsys)
    assert code == 2
    assert "built-in talk model" in err and "not there yet" in err and "--checkpoint" in err
    assert not (tmp_path / "motion.npz").exists()


def test_bad_inputs_are_clear_errors(tmp_path, speech, capsys):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00" * 100)
    code, _, err = _run([bad, "--checkpoint", tmp_path / "x.safetensors"], capsys)
    assert code == 2 and "could not decode audio file" in err
    code, _, err = _run([speech, "--checkpoint", tmp_path / "missing.pt"], capsys)
    assert code == 2 and "not found" in err
    model_path = tmp_path / "tiny.safetensors"
    ckpt.save_talk_checkpoint(random_model(TINY), model_path)
    clip = tmp_path / "clip.npz"
    np.savez(clip, motion=np.zeros((50, 106), np.float32))
    code, _, err = _run([speech, "--checkpoint", model_path, "--style", clip], capsys)
    assert code == 2 and "this model needs [50, 32]" in err


def test_style_clip_files(tmp_path):
    good = tmp_path / "clip.npz"
    np.savez(good, motion=np.ones((50, 32), np.float32))
    assert load_style_clip(good, 32).shape == (50, 32)
    nokey = tmp_path / "nokey.npz"
    np.savez(nokey, other=np.ones(3))
    from splattalk.errors import SplattalkError

    with pytest.raises(SplattalkError, match="no array 'motion'"):
        load_style_clip(nokey, 32)
    pickled = tmp_path / "obj.pt"
    torch.save({"motion": torch.zeros(50, 32)}, pickled)
    with pytest.raises(SplattalkError, match="expected one tensor"):
        load_style_clip(pickled, 32)


def test_pause_closure_option(tmp_path, capsys):
    """The model's pause gate by default; ``--pause-closure False`` leaves the pause's lips as the model made them."""
    speech = tmp_path / "pause.wav"
    sf.write(speech, np.concatenate([speechlike(3.0), np.zeros(24000, np.float32), speechlike(3.0, seed=1)]), 16000)
    model_path = tmp_path / "tiny.safetensors"
    ckpt.save_talk_checkpoint(random_model(TINY), model_path)
    shut, free = tmp_path / "shut.npz", tmp_path / "free.npz"
    assert _run([speech, "--out", shut, "--checkpoint", model_path, "--no-smooth"], capsys)[0] == 0
    assert (
        _run([speech, "--out", free, "--checkpoint", model_path, "--no-smooth", "--pause-closure", "False"], capsys)[0]
        == 0
    )
    cols = list(TINY.closure_channels)
    with np.load(shut) as a, np.load(free) as b:
        pause = slice(80, 105)  # 3.2–4.2 s, inside the 3.0–4.5 s pause
        assert np.abs(a["motion"][pause][:, cols] - np.array(TINY.closure_rest)).max() < 1e-3
        assert np.abs(b["motion"][pause][:, cols] - np.array(TINY.closure_rest)).max() > 1e-2
        others = [c for c in range(TINY.motion_dim) if c not in cols]
        np.testing.assert_array_equal(a["motion"][:, others], b["motion"][:, others])
