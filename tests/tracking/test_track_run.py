"""`splattalk track` end to end: accuracy on the sample's known motion, the run-folder format,
resuming, and bad input (each case builds its own small video)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from track_media import SAMPLE, SAMPLE_GT, paste, sample_frames, with_rotation, write_video

from splattalk.errors import SplattalkError
from splattalk.head.default import load_default_head
from splattalk.run import Tracks
from splattalk.tracking.config import TrackConfig
from splattalk.tracking.metrics import evaluate
from splattalk.tracking.run import track

CLIP_SECONDS = 2.5
CLIP_FRAMES = 63  # output frames starting before 2.5 s


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("sample") / "run"
    summary = track(SAMPLE, run, TrackConfig(head="default", max_seconds=CLIP_SECONDS), progress=False)
    return run, summary


def test_sample_clip_meets_the_accuracy_targets(sample_run):
    run, summary = sample_run
    tracks = Tracks.load(run / "tracking" / "tracks.npz")
    with np.load(SAMPLE_GT) as data:
        truth = {k: data[k] for k in data.files}
    m = evaluate(tracks, truth, load_default_head())
    print(json.dumps(m, indent=1))
    assert m["frames"] == CLIP_FRAMES
    assert m["residual_px"] <= 1.5  # landmark reprojection error (fit vs detections), output pixels
    assert m["landmark_px"] < m["landmark_px_mediapipe"]  # and closer to the truth than mediapipe itself
    assert m["vertex_error_pct"] <= 2.0
    assert m["jaw_deg_max"] <= 3.0
    assert m["jitter_ratio"] <= 1.2


def test_sample_blink_is_tracked_at_its_frames(sample_run):
    """The sample closes its eyes once in these frames: mediapipe's lids and the tracked mesh show that blink at
    its frames (±1) and no other, and the tracked blink coefficients pass 0.5 (more in test_track_blinks.py)."""
    from splattalk.head.default import EXPR_NAMES
    from splattalk.tracking.eyes import eye_openness, find_blinks, tracked_openness

    run, _ = sample_run
    tracks = Tracks.load(run / "tracking" / "tracks.npz")
    blink = [EXPR_NAMES.index("blink_left"), EXPR_NAMES.index("blink_right")]
    with np.load(SAMPLE_GT) as data:
        closed = np.nonzero(data["expr"][:CLIP_FRAMES, blink].mean(1) > 0.5)[0]
    assert closed.min() > 0 and closed.max() < CLIP_FRAMES - 1 and np.ptp(closed) < 6  # one blink inside the clip
    for curve in (eye_openness(tracks.landmarks2d), tracked_openness(load_default_head(), tracks)):
        found = find_blinks(curve)
        assert len(found) == 1 and closed.min() - 1 <= found[0].start and found[0].end <= closed.max() + 1, found
    assert tracks.expr[closed.min() : closed.max() + 1, blink].mean(1).max() > 0.5


def test_run_folder_layout(sample_run):
    import cv2

    run, summary = sample_run
    count = CLIP_FRAMES
    assert len(list((run / "frames").glob("*.jpg"))) == count == len(list((run / "masks").glob("*.png")))
    frame = cv2.imread(str(run / "frames" / "000000.jpg"))
    mask = cv2.imread(str(run / "masks" / "000000.png"), cv2.IMREAD_GRAYSCALE)
    assert frame.shape == (512, 512, 3) and mask.shape == (512, 512)
    assert mask[250:300, 230:280].mean() > 200 and mask[:20, :20].mean() < 30  # head vs background corner

    tracks = Tracks.load(run / "tracking" / "tracks.npz")
    sizes = {"expr": 26, "jaw": 3, "neck": 3, "rot": 3, "transl": 3, "eyes": 6}
    for key, size in sizes.items():
        assert getattr(tracks, key).shape == (count, size) and np.isfinite(getattr(tracks, key)).all(), key
    assert tracks.shape.shape == (16,) and tracks.K.shape == (3, 3) and tracks.viewmat.shape == (4, 4)
    assert tracks.static_offset.shape == (4666, 3)
    assert tracks.width == tracks.height == 512 and tracks.fps == 25.0
    assert tracks.head_model == "default-head-v1"
    assert tracks.valid.all() and not tracks.interpolated.any()

    transforms = json.loads((run / "tracking" / "transforms.json").read_text())
    assert len(transforms["frames"]) == count and transforms["w"] == 512
    assert np.isclose(transforms["fl_x"], tracks.K[0, 0])
    for item in transforms["frames"][:3]:
        assert (run / "tracking" / item["file_path"]).is_file() and (run / "tracking" / item["fg_mask_path"]).is_file()
        with np.load(run / "tracking" / item["flame_param_path"]) as params:
            assert params["expr"].shape == (1, 26) and params["jaw_pose"].shape == (1, 3)
    config = json.loads((run / "tracking" / "config.json").read_text())
    assert config["frames"] == count and config["config"]["size"] == 512 and "seconds" in config


def test_rerun_resumes_and_recovers(tmp_path):
    import av

    video = write_video(tmp_path / "clip.mp4", sample_frames(12))
    run = tmp_path / "run"
    first = track(video, run, TrackConfig(head="default"), progress=False)
    assert not any("reused" in n for n in first["notes"])
    with av.open(str(run / "tracking" / "overlay.mp4")) as container:
        assert container.streams.video[0].frames == 12
    second = track(video, run, TrackConfig(head="default"), progress=False)
    for stage in ("landmarks", "frames", "fit", "overlay"):
        assert f"{stage}: reused" in second["notes"]
    # a truncated result is recomputed (judged by content, not by existence)
    path = run / "tracking" / "tracks.npz"
    path.write_bytes(path.read_bytes()[:200])
    (run / "frames" / "000005.jpg").unlink()
    third = track(video, run, TrackConfig(head="default"), progress=False)
    assert "landmarks: reused" in third["notes"]
    assert "frames: reused" not in third["notes"] and "fit: reused" not in third["notes"]
    assert (run / "frames" / "000005.jpg").is_file() and Tracks.load(path).expr.shape == (12, 26)
    # other fit settings: only the fit and what follows are redone
    fourth = track(
        video, run, TrackConfig(head="default", fit=TrackConfig().fit.__class__(smooth_expr=1.0)), progress=False
    )
    assert "frames: reused" in fourth["notes"] and "fit: reused" not in fourth["notes"]


def assert_nothing_written(run):
    assert not (run / "frames").exists() or not any((run / "frames").iterdir())
    assert not (run / "tracking" / "tracks.npz").exists()


def test_video_without_a_face(tmp_path):
    rng = np.random.default_rng(0)
    video = write_video(tmp_path / "noise.mp4", [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(8)])
    run = tmp_path / "run"
    with pytest.raises(SplattalkError, match="no face found in any of the 8 frames"):
        track(video, run, TrackConfig(head="default"), progress=False)
    assert_nothing_written(run)


def test_new_input_into_an_old_run_folder(tmp_path):
    """A failed run on another video must not leave the old results looking like this video's."""
    run = tmp_path / "run"
    track(
        write_video(tmp_path / "face.mp4", sample_frames(4)),
        run,
        TrackConfig(head="default", overlay=False, masks=False),
        progress=False,
    )
    assert (run / "tracking" / "tracks.npz").is_file()
    rng = np.random.default_rng(2)
    noise = write_video(tmp_path / "noise.mp4", [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(4)])
    with pytest.raises(SplattalkError, match="no face"):
        track(noise, run, TrackConfig(head="default"), progress=False)
    for name in ("tracks.npz", "transforms.json", "config.json", "frames.json"):
        assert not (run / "tracking" / name).exists(), name
    assert_nothing_written(run)


def test_too_few_frames_with_a_face(tmp_path):
    rng = np.random.default_rng(1)
    faces = sample_frames(3)
    frames = faces + [rng.integers(0, 255, (512, 512, 3), dtype=np.uint8) for _ in range(7)]
    video = write_video(tmp_path / "mostly_noise.mp4", frames)
    with pytest.raises(SplattalkError, match="only 3 of 10 frames"):
        track(video, tmp_path / "run", TrackConfig(head="default"), progress=False)
    assert_nothing_written(tmp_path / "run")


def test_two_faces_tracks_the_largest(tmp_path):
    frames = []
    for image in sample_frames(6):
        canvas = paste((512, 800), image, 480, 10, 16)
        frames.append(paste((512, 800), image, 240, 540, 120, canvas=canvas))
    video = write_video(tmp_path / "two.mp4", frames)
    run = tmp_path / "run"
    summary = track(video, run, TrackConfig(head="default", overlay=False, masks=False), progress=False)
    assert any("2 faces" in n and "largest" in n for n in summary["notes"])
    points = np.load(run / "tracking" / "landmarks.npz")["points"]
    assert points[..., 0].max() < 500  # every frame: the big face on the left, never the small one


def test_tiny_face_is_refused(tmp_path):
    image = sample_frames(1)[0]
    frames = [paste((480, 640), image, 70, 300, 200) for _ in range(5)]  # face ~35 px wide
    video = write_video(tmp_path / "tiny.mp4", frames)
    with pytest.raises(SplattalkError, match=r"\d+ px"):
        track(video, tmp_path / "run", TrackConfig(head="default"), progress=False)
    assert_nothing_written(tmp_path / "run")


def test_small_face_is_tracked_through_the_detector(tmp_path):
    # ~110 px face in a 1280×720 frame: too small for the face mesh's own detector, found by the full-range one
    image = sample_frames(1)[0]
    frames = [paste((720, 1280), image, 224, 700, 300) for _ in range(4)]
    video = write_video(tmp_path / "small.mp4", frames)
    run = tmp_path / "run"
    summary = track(video, run, TrackConfig(head="default", overlay=False, masks=False), progress=False)
    assert summary["faces_found"] == 4
    crop = summary["crop"]
    assert 650 < crop["x0"] + crop["side"] / 2 < 980  # around the pasted face


def test_rotated_portrait_phone_video(tmp_path):
    # stored sideways with a display rotation, as phones record portrait video
    frames = [np.ascontiguousarray(np.rot90(f[:, 64:448], -1)) for f in sample_frames(6)]
    stored = write_video(tmp_path / "stored.mp4", frames)
    video = with_rotation(stored, tmp_path / "portrait.mp4", 90)
    run = tmp_path / "run"
    summary = track(video, run, TrackConfig(head="default", overlay=False, masks=False), progress=False)
    assert summary["source"]["rotation"] in (90, 270) and summary["faces_found"] == 6
    lmk = Tracks.load(run / "tracking" / "tracks.npz").landmarks2d[0]
    assert lmk[[33, 263], 1].mean() < lmk[[13, 14], 1].mean()  # upright: eyes above the mouth


def test_variable_frame_rate_video(tmp_path):
    images = sample_frames(10)
    times = [0.0, 0.03, 0.05, 0.12, 0.14, 0.2, 0.26, 0.27, 0.33, 0.41]
    video = write_video(tmp_path / "vfr.mp4", images, times=times)
    summary = track(video, tmp_path / "run", TrackConfig(head="default", overlay=False, masks=False), progress=False)
    # output frame k (at k/25 s) shows the nearest source frame, up to half the last frame's duration past it
    end = times[-1] + (times[-1] - times[-2]) / 2
    assert summary["frames"] == int(np.ceil(end * 25)) and summary["faces_found"] == summary["frames"]


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    from splattalk.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["track", str(tmp_path / "missing.mp4"), "--run", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "input not found" in err and "Traceback" not in err
