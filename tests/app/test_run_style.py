""" "Talks like you": `splattalk talk/export/view` given a run take the style clip from the run's tracked motion."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from talk_helpers import one_thread, random_model, save_tracked_run, speechlike  # noqa: F401

from splattalk.cli import main
from splattalk.models import run_style, style_window
from splattalk.run import Tracks
from splattalk.talk import checkpoint as ckpt
from splattalk.talk.config import TINY
from splattalk.talk.corpus.tracks import head_motion

pytestmark = pytest.mark.usefixtures("one_thread")


def _tracked_run(folder, T=150, head_model="default-head-v1", E=26, talk_from=60, valid=None):
    """A run whose jaw is still except for frames ``talk_from`` … ``talk_from + 49`` (a 2 s stretch of speech)."""
    rng = np.random.default_rng(1)
    expr = (0.05 * rng.standard_normal((T, E))).astype(np.float32)
    jaw = np.zeros((T, 3), np.float32)
    jaw[talk_from : talk_from + 50, 0] = 0.15 * np.abs(np.sin(np.arange(len(jaw[talk_from : talk_from + 50])) * 0.7))
    rot = (0.02 * rng.standard_normal((T, 3))).astype(np.float32)
    return save_tracked_run(folder, expr, jaw, rot=rot, head_model=head_model, valid=valid)


def test_the_window_where_the_jaw_moves_most_is_chosen_among_valid_frames():
    motion = np.zeros((200, 32), np.float32)
    motion[120:170, -3] = np.sin(np.arange(50))  # the speaking stretch
    motion[20:70, -3] = 0.5 * np.sin(np.arange(50))  # a quieter one
    assert abs(style_window(motion, 50) - 120) <= 1  # ± the one step into or out of the stretch
    valid = np.ones(200, bool)
    valid[110:] = False  # the face lost from frame 110: the best window of valid frames is the quieter stretch
    assert abs(style_window(motion, 50, valid) - 20) <= 1
    assert style_window(motion[:40], 50) is None
    assert style_window(motion, 50, np.zeros(200, bool)) is None


def test_run_style_is_the_runs_speaking_stretch_in_the_corpus_convention(tmp_path):
    model = random_model(TINY)
    run = _tracked_run(tmp_path / "run")
    said = []
    clip = run_style(run, model, log=said.append)
    tracks = Tracks.load(run / "tracking" / "tracks.npz")
    motion = head_motion({"expr": tracks.expr, "rot": tracks.rot, "jaw": tracks.jaw}, 25.0)
    assert clip.shape == (TINY.style_frames, TINY.motion_dim) and clip.dtype == np.float32
    start = next(s for s in range(55, 66) if np.allclose(clip, motion[s : s + 50], atol=1e-6))
    assert abs(start - 60) <= 1
    assert "style from this person's tracked motion" in said[0]
    assert run_style(None, model) is None and run_style(tmp_path / "no_run", model) is None


def test_a_run_of_another_head_model_or_too_short_keeps_the_default_style(tmp_path):
    model = random_model(TINY)
    said = []
    flame = _tracked_run(tmp_path / "flame", head_model="flame2023", E=26)
    assert run_style(flame, model, log=said.append) is None
    assert "'flame2023'" in said[-1] and "default style" in said[-1]
    short = _tracked_run(tmp_path / "short", T=40, talk_from=0)
    assert run_style(short, model, log=said.append) is None
    assert "no 2 s of valid frames" in said[-1]


def _talk(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(["talk", *map(str, args)])
    out = capsys.readouterr()
    assert info.value.code == 0, out.err
    return out.out


def test_talk_with_a_run_speaks_in_its_style_unless_told_not_to(tmp_path, capsys):
    model_path = tmp_path / "tiny.safetensors"
    ckpt.save_talk_checkpoint(random_model(TINY), model_path)
    speech = tmp_path / "speech.wav"
    sf.write(speech, speechlike(3.0), 16000)
    run = _tracked_run(tmp_path / "run")
    style_file = tmp_path / "style.npz"
    np.savez(style_file, motion=run_style(run, random_model(TINY), log=lambda *a: None))

    def motion(*extra):
        out = tmp_path / "m.npz"
        said = _talk([speech, "--out", out, "--checkpoint", model_path, *extra], capsys)
        with np.load(out) as data:
            return data["motion"], said

    own, said = motion("--run", run)
    assert "style from this person's tracked motion" in said
    neutral, said = motion("--run", run, "--no-run-style")
    assert "style from" not in said
    explicit, _ = motion("--style", style_file)
    np.testing.assert_allclose(own, explicit, atol=1e-6)  # the run's clip is what was used
    assert np.abs(own - neutral).max() > 1e-3  # and it changes the motion
    plain, _ = motion()
    np.testing.assert_allclose(plain, neutral, atol=1e-6)
    with pytest.raises(SystemExit) as info:
        main(["talk", str(speech), "--checkpoint", str(model_path), "--run", str(tmp_path / "nowhere")])
    assert info.value.code == 2 and "is not a folder" in capsys.readouterr().err


def test_the_viewer_offers_the_runs_style_first(tmp_path):
    from viewer_helpers import small_avatar

    from splattalk.avatar.io import save_avatar
    from splattalk.viewer.config import ViewConfig
    from splattalk.viewer.server import TRACKED_STYLE, load_resources

    model_path = tmp_path / "tiny.safetensors"
    ckpt.save_talk_checkpoint(random_model(TINY), model_path)
    run = _tracked_run(tmp_path / "run")
    save_avatar(run / "avatar" / "avatar.safetensors", small_avatar(200))
    quiet = lambda *a, **k: None  # noqa: E731
    res = load_resources(ViewConfig(run=run, checkpoint=model_path), log=quiet)
    assert next(iter(res.styles)) == TRACKED_STYLE and res.styles[TRACKED_STYLE].shape == (50, 32)
    res = load_resources(ViewConfig(run=run, checkpoint=model_path, run_style=False), log=quiet)
    assert TRACKED_STYLE not in res.styles and next(iter(res.styles)) == "model default"
