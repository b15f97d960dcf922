"""Held-out scoring at another resolution, with the face-region (eyes + mouth) mask from the tracked mesh."""

import numpy as np
import pytest
import torch
from fit_scene import make_tiny_run

from splattalk.avatar.face_parts import FACE_PARTS
from splattalk.avatar.fit import fit
from splattalk.avatar.fit_config import FitConfig
from splattalk.avatar.heldout import face_region_mask, masked_ssim, part_points, score_heldout
from splattalk.avatar.metrics import ssim
from splattalk.head.default import load_default_head


def test_face_mask_covers_each_part_grown_by_the_margin():
    points = {
        "right_eye": np.array([[20.0, 20], [30, 20], [25, 24]]),
        "left_eye": np.array([[60.0, 20], [70, 20], [65, 24]]),
        "mouth": np.array([[35.0, 60], [55, 60], [45, 70]]),
    }
    mask = face_region_mask(points, 100, 90, margin=0.1)  # grown by 0.1 × 40 px = 4 px
    assert mask[21, 25] and mask[21, 65] and mask[64, 45]
    assert mask[16, 25] and not mask[12, 25]  # 4 px above the eye's top edge: inside; 8 px: outside
    assert not mask[40, 45] and not mask[85, 5]
    assert masked_ssim(torch.rand(90, 100, 3), torch.rand(90, 100, 3), mask) < 0.5


def test_masked_ssim_over_everything_is_ssim():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(40, 50, 3, generator=g), torch.rand(40, 50, 3, generator=g)
    b = 0.7 * a + 0.3 * b
    assert masked_ssim(a, b, np.ones((40, 50), bool)) == pytest.approx(ssim(a, b), abs=1e-6)


def test_default_head_parts_project_to_eyes_above_the_mouth():
    head = load_default_head()
    with torch.no_grad():
        lmk = head(shape=torch.zeros(head.num_shape)).landmarks[0]
    viewmat = torch.eye(4)
    viewmat[1, 1] = viewmat[2, 2] = -1.0  # head-model y up, z towards the camera → OpenCV
    viewmat[2, 3] = 0.6
    K = torch.tensor([[800.0, 0, 256], [0, 800, 256], [0, 0, 1]])
    parts = part_points(lmk, head.lmk_ids.numpy(), viewmat, K)
    assert set(parts) == set(FACE_PARTS)
    right, left, mouth = (parts[k].mean(0) for k in ("right_eye", "left_eye", "mouth"))
    assert mouth[1] > right[1] + 30 and mouth[1] > left[1] + 30  # image y grows downwards
    assert abs(right[0] - left[0]) > 30


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    run = make_tiny_run(tmp_path_factory.mktemp("tiny") / "run", num_frames=12, size=64)
    cfg = FitConfig(
        resolution=48,
        iterations=40,
        init_gaussians=1500,
        init_frames=4,
        eval_every=20,
        checkpoint_every=40,
        preview_every=0,
        densify_from=20,
        densify_every=20,
        max_gaussians=2500,
        background="0.7,0.72,0.75",
    )
    return run, fit(run, cfg, progress=False)


def test_score_heldout_at_the_fit_resolution_agrees_with_the_fit(fitted):
    run, summary = fitted
    score, kept = score_heldout(run, resolution=48, keep=[11])
    assert score.frames == [11] and score.resolution == (48, 48)
    assert score.psnr == pytest.approx(summary["metrics"]["heldout"]["psnr"], abs=0.05)
    assert 0.0 < score.face_fraction < 0.5 and np.isfinite(score.face_psnr)
    assert kept[11]["render"].shape == (48, 48, 3) and kept[11]["mask"].any()
    big, _ = score_heldout(run, resolution=64)
    assert big.resolution == (64, 64) and np.isfinite(big.psnr)
