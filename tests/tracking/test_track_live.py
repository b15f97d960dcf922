"""The live (per-frame) tracker and the mirror on the repository's sample video, whose parameters are known.

The sample (``splattalk/data/sample``) is the default head rendered with known per-frame parameters
(``sample_gt.npz``); the first 100 frames, downscaled to the live input size (320 px), go through the
tracker one at a time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from splattalk.assets import data_path
from splattalk.tracking.live import LiveTrackConfig, LiveTracker, OneEuro

FRAMES = 100
SIDE = 320


@lru_cache(maxsize=1)
def _sample() -> tuple[np.ndarray, dict]:
    import av
    import cv2

    frames = []
    with av.open(str(data_path("sample/sample.mp4"))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= FRAMES:
                break
            frames.append(cv2.resize(frame.to_ndarray(format="rgb24"), (SIDE, SIDE), interpolation=cv2.INTER_AREA))
    with np.load(data_path("sample/sample_gt.npz")) as gt:
        truth = {k: gt[k] for k in gt.files}
    return np.stack(frames), truth


def test_one_euro_keeps_a_constant_and_follows_a_step():
    f = OneEuro(min_cutoff=3.0, beta=0.3)
    xs = [f(np.array([2.0]), t / 25) for t in range(10)]
    assert np.allclose(xs, 2.0)
    ys = [f(np.array([3.0]), (10 + t) / 25)[0] for t in range(25)]
    assert 2.0 < ys[0] < 3.0 and ys[-1] > 2.99, "a step is followed within a second, not jumped to"


def test_live_tracker_follows_the_sample_jaw_and_head():
    from splattalk.head.default import load_default_head

    frames, gt = _sample()
    tracker = LiveTracker(load_default_head(), gt["shape"], LiveTrackConfig())
    try:
        out = [tracker(frame, t / 25) for t, frame in enumerate(frames)]
    finally:
        tracker.close()
    assert all(o is not None for o in out) and tracker.found == FRAMES
    jaw = np.array([o.jaw[0, 0] for o in out])
    rot = np.array([o.rot[0] for o in out])
    truth_jaw = gt["jaw"][:FRAMES, 0]
    assert np.corrcoef(jaw, truth_jaw)[0, 1] > 0.75
    # the head's yaw (its largest motion in the sample) is followed closely
    assert np.corrcoef(rot[:, 1], gt["rot"][:FRAMES, 1])[0, 1] > 0.9
    with pytest.raises(RuntimeError, match="closed"):
        tracker(frames[0], 10.0)


def test_no_face_gives_none_and_the_next_face_restarts():
    from splattalk.head.default import load_default_head

    frames, gt = _sample()
    tracker = LiveTracker(load_default_head(), gt["shape"])
    try:
        assert tracker(frames[0], 0.0) is not None
        assert tracker(np.zeros_like(frames[0]), 0.04) is None and tracker.state is None
        again = tracker(frames[1], 0.08)
        assert again is not None and np.isfinite(again.expr).all()
    finally:
        tracker.close()


def test_mirror_is_relative_to_the_first_frames_and_keeps_the_avatar_base():
    from splattalk.head.default import load_default_head
    from splattalk.head.params import HeadParams
    from splattalk.mirror import REFERENCE_FRAMES, Mirror

    frames, gt = _sample()
    base = HeadParams.zeros(1, gt["expr"].shape[1])
    base.transl[0] = (0.0, 0.01, 0.02)
    mirror = Mirror(load_default_head(), gt["shape"], base)
    try:
        out = [mirror(frame, t / 25) for t, frame in enumerate(frames[:40])]
    finally:
        mirror.close()
    motion = np.stack([o[0] for o in out])
    extras = np.stack([o[1] for o in out])
    e = gt["expr"].shape[1]
    assert motion.shape == (40, e + 6) and extras.shape == (40, 12)
    # the first frame is its own reference: no relative rotation, the translation is the avatar's base; the reference
    # then grows to REFERENCE_FRAMES frames and stays
    assert np.abs(motion[0, e : e + 3]).max() < 1e-5 and np.abs(extras[0, 3:6] - base.transl[0]).max() < 1e-5
    assert len(mirror.reference) == REFERENCE_FRAMES
    # the jaw is copied as tracked (the sample opens its mouth in the first 40 frames)
    assert np.corrcoef(motion[:, -3], gt["jaw"][:40, 0])[0, 1] > 0.7
