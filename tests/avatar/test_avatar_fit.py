"""The fitting stage end to end on a tiny synthetic run: it learns, it resumes, its avatar animates what it fitted."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from fit_scene import make_tiny_run

from splattalk.avatar.dataset import load_run
from splattalk.avatar.fit import fit, prepare
from splattalk.avatar.fit_config import FitConfig
from splattalk.avatar.io import load_avatar
from splattalk.avatar.metrics import psnr
from splattalk.avatar.model import animate
from splattalk.avatar.optim import GaussianParams
from splattalk.avatar.retrack import RetrackSettings, apply_rows, frame_rows, refine_frames
from splattalk.avatar.view import Camera, render_gaussians
from splattalk.errors import SplattalkError

TINY = FitConfig(
    resolution=48,
    iterations=60,
    init_gaussians=1500,
    init_frames=4,
    eval_every=20,
    checkpoint_every=20,
    preview_every=0,
    densify_from=20,
    densify_every=20,
    grad_threshold=0.002,
    max_gaussians=2500,
    refine_tracking=False,
    alpha_weight=0.0,
    background="0.7,0.72,0.75",
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("tiny") / "run", num_frames=12, size=64)


@pytest.fixture(scope="module")
def fitted(tiny_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("fitted") / "run"
    shutil.copytree(tiny_run, run)
    return run, fit(run, TINY, progress=False)


def test_short_fit_raises_psnr_and_writes_outputs(fitted):
    run, summary = fitted
    history = summary["metrics"]["history"]
    first, last = history[0], summary["metrics"]["heldout"]
    start = json.loads((run / "avatar" / "metrics.json").read_text())
    assert start["heldout"]["psnr"] == pytest.approx(last["psnr"])
    assert last["psnr"] > first["psnr"] + 1.0, history
    assert last["ssim"] > first["ssim"], history
    for name in ("avatar.safetensors", "canonical.ply", "config.json", "metrics.json", "previews/iter_000060.png"):
        assert (run / "avatar" / name).is_file(), name
    assert last["frames"] == [11]  # the last 10 % of 12 frames: one, never trained


def test_rerun_of_a_finished_fit_reuses_it(fitted):
    run, summary = fitted
    stamp = (run / "avatar" / "avatar.safetensors").stat().st_mtime_ns
    again = fit(run, TINY, progress=False)
    assert again["metrics"]["heldout"] == summary["metrics"]["heldout"]
    assert (run / "avatar" / "avatar.safetensors").stat().st_mtime_ns == stamp  # nothing rewritten


def test_initialisation_is_already_close_and_training_improves_it(tiny_run, tmp_path):
    """Colours projected from the frames give a recognisable head before any step (PSNR well above a flat grey)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    summary = fit(run, FitConfig(**{**TINY.__dict__, "iterations": 1, "eval_every": 1}), progress=False)
    assert summary["metrics"]["heldout"]["psnr"] > 20.0


def test_animate_reproduces_the_fitted_frame(fitted, tiny_run):
    """animate() (fast playback path) with frame i's parameters renders what training rendered for frame i."""
    run, _ = fitted
    avatar = load_avatar(run / "avatar" / "avatar.safetensors")
    f = prepare(run, TINY, progress=False)
    data = load_run(run, TINY.resolution, TINY.holdout_fraction, TINY.background)
    training = GaussianParams(
        avatar.gaussians,
        {k: 0.0 for k in ("local_means", "local_quats", "log_scales", "opacity_logits", "sh_dc", "sh_rest")},
    )
    for i in (0, 5, 11):
        g_train = f.pose(training, f.vertices[i])  # the loop's differentiable path
        rgb_train, _ = render_gaussians(g_train, f.camera, data.background, "cpu", TINY.sh_degree)
        with torch.no_grad():
            g = animate(avatar, data.params.slice(i)).frame(0)
        assert torch.allclose(g.means, g_train.means.detach(), atol=2e-6)
        rgb, _ = render_gaussians(g, f.camera, data.background, "cpu", TINY.sh_degree)
        assert (rgb - rgb_train.detach()).abs().max() < 1e-4, i


def test_interrupted_fit_resumes_to_the_same_avatar(tiny_run, fitted, tmp_path):
    """Killed between checkpoints (iteration 47; last checkpoint at 40), rerun:
    bit-identical to the uninterrupted fit."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with pytest.raises(KeyboardInterrupt):
        fit(run, TINY, progress=False, stop_after=47)
    assert (run / "avatar" / "checkpoint.pt").is_file() and not (run / "avatar" / "avatar.safetensors").exists()
    resumed = fit(run, TINY, progress=False)
    uninterrupted_run, uninterrupted = fitted
    a = load_avatar(run / "avatar" / "avatar.safetensors")
    b = load_avatar(uninterrupted_run / "avatar" / "avatar.safetensors")
    for k, v in a.gaussians.tensors().items():
        assert torch.equal(v, getattr(b.gaussians, k)), k
    assert resumed["metrics"]["heldout"]["psnr"] == uninterrupted["metrics"]["heldout"]["psnr"]
    assert [h["psnr"] for h in resumed["metrics"]["history"]] == [
        h["psnr"] for h in uninterrupted["metrics"]["history"]
    ]


def test_tracking_refinement_moves_only_training_frames_a_little(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    cfg = FitConfig(**{**TINY.__dict__, "iterations": 30, "refine_tracking": True, "lr_tracking": 0.002})
    fit(run, cfg, progress=False)
    with np.load(run / "avatar" / "refined_tracks.npz") as refined, np.load(run / "tracking" / "tracks.npz") as tracked:
        moved = np.abs(refined["expr"] - tracked["expr"]).max(1) + np.abs(refined["rot"] - tracked["rot"]).max(1)
        assert moved[11] == 0  # the held-out frame is never corrected
        assert moved[:11].max() > 0 and moved[:11].max() < 0.2
        assert np.array_equal(refined["neck"], tracked["neck"])


def test_changed_settings_start_over(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with pytest.raises(KeyboardInterrupt):
        fit(run, TINY, progress=False, stop_after=20)
    other = FitConfig(**{**TINY.__dict__, "iterations": 10, "eval_every": 10, "seed": 1})
    summary = fit(run, other, progress=False)
    # resumed, it would have nothing left to do (20 > 10) and keep the old history
    assert [h["iteration"] for h in summary["metrics"]["history"]] == [10]


def test_bad_runs_are_refused_with_a_useful_message(tiny_run, tmp_path):
    with pytest.raises(SplattalkError, match="splattalk track"):
        fit(tmp_path / "nothing", TINY, progress=False)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "masks" / "000003.png").unlink()
    with pytest.raises(SplattalkError, match="000003.png"):
        fit(run, TINY, progress=False)
    with pytest.raises(SplattalkError, match="background"):
        fit(tiny_run, FitConfig(background="red"), progress=False)


def test_fit_command_is_registered_and_light():
    out = subprocess.run(
        [sys.executable, "-m", "splattalk", "fit", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "--resolution" in out.stdout and "--iterations" in out.stdout and "--restart" in out.stdout
    code = "import sys, splattalk.avatar.fit_config; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.slow
def test_killed_process_resumes(tiny_run, tmp_path):
    """A real SIGKILL of `splattalk fit` mid-run, then a rerun: same avatar as an uninterrupted in-process fit."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    args = [
        sys.executable,
        "-m",
        "splattalk",
        "fit",
        str(run),
        "--quiet",
        "--resolution",
        "48",
        "--iterations",
        "60",
        "--init-gaussians",
        "1500",
        "--init-frames",
        "4",
        "--eval-every",
        "20",
        "--checkpoint-every",
        "20",
        "--preview-every",
        "0",
        "--densify-from",
        "20",
        "--densify-every",
        "20",
        "--grad-threshold",
        "0.002",
        "--max-gaussians",
        "2500",
        "--no-refine-tracking",
        "--alpha-weight",
        "0",
        "--background",
        "0.7,0.72,0.75",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = run / "avatar" / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert subprocess.run(args, capture_output=True, text=True).returncode == 0
    expected_run = tmp_path / "expected"
    shutil.copytree(tiny_run, expected_run)
    fit(expected_run, TINY, progress=False)
    a = load_avatar(run / "avatar" / "avatar.safetensors").gaussians
    b = load_avatar(expected_run / "avatar" / "avatar.safetensors").gaussians
    assert all(np.array_equal(v.numpy(), getattr(b, k).numpy()) for k, v in a.tensors().items())


def test_fit_refines_the_heldout_tracks_and_scores_them_both_ways(fitted):
    run, summary = fitted
    retracked = summary["metrics"]["heldout_retracked"]
    assert retracked["frames"] == [11] and retracked["steps"] == TINY.retrack_steps
    # the refinement lowers the image loss on its frame; PSNR follows it closely
    assert retracked["psnr"] > summary["metrics"]["heldout"]["psnr"] - 0.05
    with np.load(run / "avatar" / "retracked.npz") as rows, np.load(run / "tracking" / "tracks.npz") as tracked:
        assert rows["frames"].tolist() == [11]
        moved = np.abs(rows["expr"][0] - tracked["expr"][11]).max() + np.abs(rows["rot"][0] - tracked["rot"][11]).max()
        assert 0 < moved < 0.3


def test_other_retrack_steps_reuse_the_fitted_gaussians(fitted, tmp_path):
    source, summary = fitted
    run = tmp_path / "run"
    shutil.copytree(source, run)
    before = load_avatar(run / "avatar" / "avatar.safetensors")
    again = fit(run, FitConfig(**{**TINY.__dict__, "retrack_steps": 3}), progress=False)
    assert again["metrics"]["history"] == summary["metrics"]["history"]  # no iteration ran again
    assert again["metrics"]["heldout_retracked"]["steps"] == 3
    after = load_avatar(run / "avatar" / "avatar.safetensors")
    for k, v in after.gaussians.tensors().items():
        assert torch.equal(v, getattr(before.gaussians, k)), k
    off = fit(run, FitConfig(**{**TINY.__dict__, "retrack_steps": 0}), progress=False)
    assert off["metrics"]["heldout_retracked"] is None and not (run / "avatar" / "retracked.npz").exists()


def test_retrack_recovers_a_known_pose_offset(fitted):
    """The avatar's own render at frame 5's tracks is the truth; started 8 mm and 0.05 rad off, the refinement
    moves most of the way back and the render matches again."""
    run, _ = fitted
    avatar = load_avatar(run / "avatar" / "avatar.safetensors")
    data = load_run(run, 128, TINY.holdout_fraction, TINY.background)
    camera = Camera(data.viewmat, data.K, data.width, data.height)
    with torch.no_grad():
        truth, _ = render_gaussians(animate(avatar, data.params.slice(5)).frame(0), camera, data.background, "cpu")
    wrong = dataclasses.replace(data.params, transl=data.params.transl.copy(), rot=data.params.rot.copy())
    wrong.transl[5] += np.array([0.008, -0.004, 0.0], wrong.transl.dtype)
    wrong.rot[5] += np.array([0.0, 0.05, 0.0], wrong.rot.dtype)
    settings = RetrackSettings(steps=60, lr=0.01, prior=0.01)
    refined = refine_frames(
        avatar.head, avatar.shape, avatar.gaussians, wrong, [5], camera, lambda i: truth, data.background, settings
    )
    start = np.abs(wrong.transl[5] - data.params.transl[5]).sum()
    end = np.abs(refined.transl[5] - data.params.transl[5]).sum()
    assert end < 0.35 * start, (start, end)
    with torch.no_grad():
        shown = [animate(avatar, p.slice(5)).frame(0) for p in (wrong, refined)]
        off, back = (psnr(render_gaussians(g, camera, data.background, "cpu")[0], truth) for g in shown)
    assert back > off + 5, (off, back)
    assert np.array_equal(refined.transl[4], data.params.transl[4])  # other rows untouched


def test_refined_rows_round_trip_and_are_checked(fitted):
    run, _ = fitted
    data = load_run(run, TINY.resolution, TINY.holdout_fraction, TINY.background)
    moved = dataclasses.replace(data.params, jaw=data.params.jaw + 0.1)
    rows = frame_rows(moved, [2, 7])
    back = apply_rows(data.params, rows)
    assert np.array_equal(back.jaw[[2, 7]], moved.jaw[[2, 7]]) and np.array_equal(back.jaw[3], data.params.jaw[3])
    with pytest.raises(ValueError, match="outside"):
        apply_rows(data.params, {**rows, "frames": np.array([2, 99])})


def test_matte_term_makes_the_render_follow_the_mask(fitted, tiny_run, tmp_path):
    """With the matte term the render's opacity matches the frames' masks more closely than without it."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    fit(run, FitConfig(**{**TINY.__dict__, "alpha_weight": 1.0}), progress=False)

    def matte_error(avatar_run):
        avatar = load_avatar(avatar_run / "avatar" / "avatar.safetensors")
        data = load_run(avatar_run, TINY.resolution, TINY.holdout_fraction, TINY.background)
        camera = Camera(data.viewmat, data.K, data.width, data.height)
        errors = []
        with torch.no_grad():
            for i in data.train_ids:
                g = animate(avatar, data.params.slice(int(i))).frame(0)
                _, alpha = render_gaussians(g, camera, data.background)
                errors.append(float((alpha[..., 0] - data.masks[int(i)].float() / 255).abs().mean()))
        return float(np.mean(errors))

    without, with_term = matte_error(fitted[0]), matte_error(run)
    assert with_term < 0.8 * without, (without, with_term)
