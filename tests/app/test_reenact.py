"""Reenactment: a tracked run drives another avatar (expressions, jaw, eyes, relative head motion), resampled
to 25 fps, with the driver's sound; a run of another head model is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from viewer_helpers import ROOT, small_avatar

from splattalk.errors import SplattalkError
from splattalk.head.params import HeadParams
from splattalk.run import PER_FRAME

SAMPLE_GT = ROOT / "splattalk" / "data" / "sample" / "sample_gt.npz"


def _sample_tracks() -> dict:
    """The embedded sample video's ground-truth parameters, in the tracks.npz layout."""
    with np.load(SAMPLE_GT, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def _write_run(run, tracks: dict, video=None):
    (run / "tracking").mkdir(parents=True)
    np.savez(run / "tracking" / "tracks.npz", **tracks)
    if video is not None:
        (run / "tracking" / "config.json").write_text(json.dumps({"video": str(video)}))
    return run


def _at_fps(tracks: dict, fps: float) -> dict:
    """The 25 fps sample re-timed to ``fps`` (linear in time), as a tracker run at that rate would give."""
    out = dict(tracks)
    n = len(tracks["expr"])
    t_src = np.arange(n) / 25.0
    t_dst = np.arange(int(np.floor((n - 1) / 25.0 * fps)) + 1) / fps
    for key in ("expr", "jaw", "neck", "rot", "transl", "eyes"):
        a = tracks[key]
        out[key] = np.stack([np.interp(t_dst, t_src, a[:, d]) for d in range(a.shape[1])], 1).astype(np.float32)
    out["fps"] = np.float32(fps)
    return out


@pytest.mark.parametrize("fps", [50.0, 30.0, 24.0, 12.5])
def test_driver_is_resampled_to_25_fps(tmp_path, fps):
    from splattalk.reenact import load_driver

    tracks = _sample_tracks()
    run = _write_run(tmp_path / "drive", _at_fps(tracks, fps))
    driver = load_driver(run, str(tracks["head_model"]), tracks["expr"].shape[1], progress=False)
    n = len(tracks["expr"])
    assert driver.source_fps == pytest.approx(fps)
    assert abs(len(driver.params) - n) <= 2  # same duration at 25 fps
    m = min(len(driver.params), n) - 2
    # the resampled jaw is the original 25 fps jaw; below 25 fps speech detail is lost, so only on average
    err = np.abs(driver.params.jaw[:m] - tracks["jaw"][:m])
    scale = np.abs(tracks["jaw"]).max()
    assert (err.max() if fps > 25 else err.mean()) < 0.1 * scale
    assert driver.audio is None  # no source video recorded: silent


def test_resample_rotation_follows_the_shortest_arc():
    from splattalk.reenact import resample_params

    p = HeadParams.zeros(3, 4)
    p.rot[:, 1] = [0.0, 0.2, 0.4]  # yaw at 10 fps
    q = resample_params(p, 10.0, 20.0)
    assert len(q) == 6
    np.testing.assert_allclose(q.rot[:5, 1], [0.0, 0.1, 0.2, 0.3, 0.4], atol=1e-5)
    assert q.rot[5, 1] == pytest.approx(0.4)  # held at the last sample, not extrapolated


def test_retarget_keeps_expression_and_makes_head_motion_relative():
    from splattalk.reenact import driven_params, retarget

    rng = np.random.default_rng(0)
    t, e = 40, 26
    d = HeadParams.zeros(t, e)
    d.expr[:] = rng.normal(0, 0.3, (t, e))
    d.jaw[:, 0] = rng.uniform(0, 0.3, t)
    d.eyes[:] = rng.normal(0, 0.05, (t, 6))
    d.rot[:] = [
        0.3,
        -0.5,
        0.1,
    ]  # the driver sat turned away from its camera, not moving
    d.rot[20:, 1] += 0.2  # … then turned its head 0.2 rad
    d.transl[:] = [0.05, 0.02, 0.8]
    motion, extras = retarget(d)
    params = driven_params(motion, extras)
    np.testing.assert_array_equal(params.expr, d.expr)
    np.testing.assert_array_equal(params.jaw, d.jaw)
    np.testing.assert_array_equal(params.eyes, d.eyes)
    # the avatar faces the camera on average and turns as much as the driver turned between the halves
    from scipy.spatial.transform import Rotation

    r = Rotation.from_rotvec(params.rot)
    assert Rotation.from_rotvec(params.rot).mean().magnitude() < 1e-3
    rd = Rotation.from_rotvec(d.rot)
    turn = (r[0].inv() * r[-1]).magnitude()
    assert turn == pytest.approx((rd[0].inv() * rd[-1]).magnitude(), abs=1e-5) and turn > 0.15
    # translation: offsets around the avatar's own place (zero here), not the driver's 0.8 m distance
    assert np.abs(params.transl).max() < 1e-5

    base = HeadParams.zeros(1, e)
    base.transl[:] = [0.0, 0.1, 0.0]
    base.rot[:] = [0.0, 0.4, 0.0]
    params = driven_params(*retarget(d, base), base)
    assert np.abs(params.transl.mean(0) - base.transl[0]).max() < 1e-5
    mean_rot = Rotation.from_rotvec(params.rot).mean()
    assert (mean_rot * Rotation.from_rotvec(base.rot[0]).inv()).magnitude() < 1e-3


def test_driving_run_of_another_head_model_is_refused(tmp_path):
    from splattalk.reenact import load_driver

    tracks = _sample_tracks()
    tracks["head_model"] = np.str_("flame2020")
    run = _write_run(tmp_path / "drive", tracks)
    with pytest.raises(SplattalkError, match=r"head model 'flame2020'.*--head default"):
        load_driver(run, "default-head-v1", tracks["expr"].shape[1], progress=False)
    with pytest.raises(SplattalkError, match="tracking/tracks.npz"):
        load_driver(tmp_path, "default-head-v1", 26, progress=False)
    with pytest.raises(SplattalkError, match="no such video"):
        load_driver(tmp_path / "missing.mp4", "default-head-v1", 26, progress=False)


def test_sample_tracks_drive_an_avatar_with_the_drivers_sound(tmp_path):
    """The sample video's parameters drive a small default avatar: the mp4 has the driver's length and sound,
    and the rendered lower face moves with the driver's jaw (frames with an open jaw differ from closed ones)."""
    import av

    from splattalk.mp4 import probe, write_mp4
    from splattalk.reenact import export_driven, load_driver, retarget

    tracks = _sample_tracks()
    keep = 50
    short = {k: (v[:keep] if k in ("expr", "jaw", "neck", "rot", "transl", "eyes") else v) for k, v in tracks.items()}
    # a driving "video" with sound (the run records it as its source, as `splattalk track` does)
    tone = (0.2 * np.sin(2 * np.pi * 200 * np.arange(keep * 640) / 16000)).astype(np.float32)
    video = write_mp4(
        tmp_path / "driver.mp4",
        (np.zeros((16, 16, 3), np.uint8) for _ in range(keep)),
        25,
        tone,
    )
    assert video == keep
    run = _write_run(tmp_path / "drive", _at_fps(short, 30.0), tmp_path / "driver.mp4")

    avatar = small_avatar(3000)
    driver = load_driver(run, avatar.model_id, avatar.head.num_expr, progress=False)
    assert driver.audio is not None and abs(len(driver.audio) / 16000 - keep / 25) < 0.1
    motion, extras = retarget(driver.params)
    out = tmp_path / "driven.mp4"
    size = 96
    n = export_driven(
        avatar,
        motion,
        extras,
        out,
        driver.audio,
        resolution=size,
        progress=False,
        backend="cpu",
    )
    assert abs(n - keep) <= 2
    info = probe(out)
    assert info["audio"] is not None and abs(info["audio"][0] - n / 25) < 0.1
    with av.open(str(out)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)])
    jaw = driver.params.jaw[: len(frames), 0]
    lower = frames[:, size // 2 :, :, :].mean(axis=(2, 3))  # [T, rows] lower half brightness profile
    closed, opened = np.argsort(jaw)[:5], np.argsort(jaw)[-5:]
    assert jaw[opened].mean() > jaw[closed].mean() + 0.05
    diff_open = np.abs(lower[opened].mean(0) - lower[closed].mean(0)).mean()
    diff_within = np.abs(lower[closed[:2]].mean(0) - lower[closed[2:4]].mean(0)).mean()
    assert diff_open > 2 * diff_within + 0.05


def test_cli_export_drive(tmp_path):
    """`splattalk export AVATAR --drive RUN` end to end (a driving run is read directly;
    --motion with --drive is an error)."""
    from splattalk.cli import main
    from splattalk.mp4 import probe
    from splattalk.viewer.server import DEFAULT_AVATAR

    tracks = _sample_tracks()
    short = {k: (v[:8] if k in ("expr", "jaw", "neck", "rot", "transl", "eyes") else v) for k, v in tracks.items()}
    run = _write_run(tmp_path / "drive", short)
    out = tmp_path / "out.mp4"
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "export",
                str(DEFAULT_AVATAR),
                "--drive",
                str(run),
                "--out",
                str(out),
                "--resolution",
                "64",
                "--backend",
                "cpu",
            ]
        )
    assert exit_.value.code == 0
    assert probe(out)["video"][0] == 8
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "export",
                str(DEFAULT_AVATAR),
                "--drive",
                str(run),
                "--motion",
                str(run / "tracking" / "tracks.npz"),
            ]
        )
    assert exit_.value.code == 2


def test_viewer_session_plays_a_driven_clip_with_the_drivers_eyes(tmp_path):
    """`splattalk view --drive`: each tab starts the driven clip; frames carry the driver's eyes/neck/translation."""
    import time

    from viewer_helpers import RecordingView

    from splattalk.reenact import retarget
    from splattalk.viewer.loudness import LoudnessStream
    from splattalk.viewer.session import Resources, Session

    avatar = small_avatar(1500)
    d = HeadParams(**{k: v for k, v in _sample_tracks().items() if k in PER_FRAME}).slice(slice(0, 40))
    d.eyes[:, 1] = np.linspace(-0.4, 0.4, 40)  # the driver looks from one side to the other
    d.eyes[:, 4] = d.eyes[:, 1]
    motion, extras = retarget(d)
    audio = np.zeros(40 * 640, np.float32)
    res = Resources(
        avatar=avatar,
        streams=lambda style: LoudnessStream(motion.shape[1], 0),
        drive=(audio, motion, extras, "driven"),
    )
    view = RecordingView()
    s = Session(res, view, tmp_path / "tab")
    s.start()
    try:
        time.sleep(0.1)
        assert s.current is None  # nothing plays before the page is up …
        s.clock_report("0 0 0 1 0 1.0 0 0 x")  # … which its first clock report shows
        assert s.current is not None and s.current.extras is not None and s.current.num_frames == 40
        assert view.audio and view.audio[-1][2] == "driven"
    finally:
        s.close()
    s = Session(res, view, tmp_path / "tab2")
    clip = s.load_driven(*res.drive)
    t0 = time.monotonic()
    for k in range(30):
        frame = s.step(t0 + k * 0.04)
    assert frame is not None and frame > 20
    expected = s.poser.buffer(clip.motion[frame], None, clip.extras[frame])
    without = s.poser.buffer(clip.motion[frame])
    np.testing.assert_array_equal(view.last_buffer, expected)
    assert not np.array_equal(expected, without)  # the eyes (and neck/translation) came from the driver
    s.set_style("model default")  # no talk model behind a driven clip: nothing is regenerated
    assert clip.done and clip.ready == 40
    s.close()


def test_mouth_gain_scales_only_the_jaw_and_mouth_channels():
    from splattalk.head.default import load_default_head
    from splattalk.reenact import scale_mouth

    names = load_default_head().expr_names
    e = len(names)
    motion = np.ones((3, e + 6), np.float32)
    out = scale_mouth(motion, names, 2.0)
    mouth = {
        "mouth_open",
        "lips_press",
        "upper_lip_raise",
        "lower_lip_depress",
        "jaw_forward",
    }
    for i, name in enumerate(names):
        expected = 2.0 if (name in mouth or name.startswith(("mouth", "lip", "upper_lip", "lower_lip"))) else 1.0
        assert out[0, i] == expected, name
    assert out[0, e : e + 3].tolist() == [1, 1, 1] and out[0, e + 3 :].tolist() == [
        2,
        2,
        2,
    ]  # rotation kept, jaw scaled
    assert {"blink_left", "brow_down", "smile"} <= {n for i, n in enumerate(names) if out[0, i] == 1.0}
    # unnamed (FLAME-style) expressions: only the jaw
    out = scale_mouth(motion, [f"expr{i}" for i in range(e)], 2.0)
    assert (out[:, :e] == 1).all() and (out[:, e + 3 :] == 2).all()


def test_mouth_agreement_measures():
    from splattalk.head.default import load_default_head
    from splattalk.mouth_agreement import correlation, mesh_mouth_opening, mouth_opening

    pts = np.zeros((2, 478, 3))
    pts[:, 33, 0], pts[:, 263, 0] = 0.0, 10.0  # eye corners 10 apart
    pts[:, 14, 1] = [1.0, 3.0]  # lips 1 then 3 apart
    np.testing.assert_allclose(mouth_opening(pts), [0.1, 0.3])
    a = np.array([0.0, 1.0, np.nan, 3.0, 4.0])
    r, n = correlation(a, 2 * a + 1)
    assert n == 4 and r == pytest.approx(1.0)
    head = load_default_head()
    p = HeadParams.zeros(3, head.num_expr)
    p.jaw[:, 0] = [0.0, 0.15, 0.3]
    opening = mesh_mouth_opening(head, np.zeros(head.num_shape, np.float32), p)
    assert opening[0] < opening[1] < opening[2]  # the jaw opens the lips on the mesh
