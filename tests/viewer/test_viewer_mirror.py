"""Mirror me, server side: message checks and caps, newest-frame-wins, per-tab isolation, freeing on stop.

A fake tracker stands in for the application's (``splattalk.mirror.Mirror``; it has its own tests in
``tests/tracking/test_track_live.py``): its jaw is the frame's mean brightness, so what a session shows
says which frames it tracked.
"""

from __future__ import annotations

import base64
import threading
import time

import numpy as np
import pytest
from viewer_helpers import RecordingView, small_avatar

from splattalk.viewer.live_video import (
    LiveVideo,
    VideoLimits,
    VideoRefused,
    decode_frame,
    encode_frame,
    jpeg_size,
    parse_frame,
)


def _image(level: int, h: int = 120, w: int = 160) -> np.ndarray:
    return np.full((h, w, 3), level, np.uint8)


class FakeTracker:
    """Jaw = mean brightness / 255; records the levels it saw; ``gate`` (if set) holds each frame until released."""

    instances: list = []

    def __init__(self, dim: int = 56, gate: threading.Event | None = None):
        self.dim, self.gate = dim, gate
        self.seen: list[float] = []
        self.closed = False
        self.busy = threading.Event()
        FakeTracker.instances.append(self)

    def __call__(self, rgb, t):
        self.busy.set()
        if self.gate is not None:
            self.gate.wait(5)
        level = float(rgb.mean())
        self.seen.append(level)
        if level < 5:
            return None  # a dark frame: no face
        row = np.zeros(self.dim, np.float32)
        row[-3] = level / 255
        return row, np.zeros(12, np.float32)

    def close(self):
        self.closed = True


def _wait(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _video(factory=None, **kw):
    notes, commands, statuses = [], [], []
    video = LiveVideo(
        factory if factory is not None else FakeTracker,
        lambda title, body, level="info": notes.append((title, body, level)),
        commands.append,
        lambda text, shown: statuses.append((text, shown)),
        **kw,
    )
    return video, notes, commands, statuses


# ----------------------------------------------------------------------------- messages


def test_frame_round_trip_and_jpeg_header():
    text = encode_frame(_image(128, 240, 320), seq=7, page_ms=1234.5)
    frame = parse_frame(text)
    assert frame.seq == 7 and frame.page_ms == pytest.approx(1234.5)
    assert jpeg_size(frame.jpeg) == (320, 240)
    rgb = decode_frame(frame.jpeg)
    assert rgb.shape == (240, 320, 3) and abs(float(rgb.mean()) - 128) < 3


@pytest.mark.parametrize(
    "text",
    [
        "v 1 2",  # no payload
        "v x 2 AAAA",
        "v 1 2 not*base64",
        "x 1 2 AAAA",
        "v 1 2 " + "A" * 90_000,  # over the size cap
    ],
)
def test_malformed_or_oversized_messages_are_refused(text):
    with pytest.raises(VideoRefused):
        parse_frame(text)


def test_not_a_jpeg_and_a_huge_declared_size_are_refused_before_decoding():
    with pytest.raises(VideoRefused, match="not a JPEG"):
        decode_frame(b"\x89PNG\r\n\x1a\n" + bytes(100))
    # A valid 16×16 JPEG whose header claims 60000×60000: refused from the header, never decoded.
    good = parse_frame(encode_frame(_image(50, 16, 16))).jpeg
    i = good.index(b"\xff\xc0")
    huge = good[: i + 5] + (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big") + good[i + 9 :]
    assert jpeg_size(huge) == (60000, 60000)
    with pytest.raises(VideoRefused, match="at most"):
        decode_frame(huge, VideoLimits())
    with pytest.raises(VideoRefused):
        decode_frame(b"\xff\xd8" + bytes(20))  # a JPEG start and nothing else


# ----------------------------------------------------------------------------- one session


def test_frames_are_tracked_and_shown_and_stop_frees_the_tracker():
    FakeTracker.instances.clear()
    video, notes, commands, statuses = _video()
    assert video.start() and commands == ["start"]
    assert video.receive(encode_frame(_image(100), seq=0, page_ms=10.0))
    _wait(lambda: video.frame(time.monotonic()) is not None)
    seq, row, extras, page_ms = video.frame(time.monotonic())
    assert seq == 0 and page_ms == 10.0 and row[-3] == pytest.approx(100 / 255, abs=0.02) and extras.shape == (12,)
    video.shown(seq, page_ms)
    assert statuses[-1][0].startswith("camera: live") and statuses[-1][1] == (0, 10.0)
    worker = video.worker
    video.stop()
    assert commands[-1] == "stop" and video.frame(time.monotonic()) is None
    worker.join(2)
    assert not worker.is_alive() and FakeTracker.instances[-1].closed, "stop must end the worker and close the tracker"
    assert not video.receive(encode_frame(_image(100), seq=1)), "frames after stop are ignored"
    assert not notes


def test_newest_frame_wins_and_stale_frames_are_dropped():
    gate = threading.Event()
    trackers = []

    def factory():
        trackers.append(FakeTracker(gate=gate))
        return trackers[-1]

    video, notes, _, _ = _video(factory)
    video.start()
    video.receive(encode_frame(_image(20), seq=0))
    _wait(lambda: trackers and trackers[0].busy.is_set())  # the worker holds frame 0
    for seq, level in enumerate((40, 60, 80, 100), start=1):
        video.receive(encode_frame(_image(level), seq=seq))
    assert video.dropped == 3 and video.slot.seq == 4, "waiting frames must be replaced, not queued"
    assert not video.receive(encode_frame(_image(200), seq=2)), "an older frame than one taken is ignored"
    gate.set()
    _wait(lambda: video.tracked == 2)
    levels = trackers[0].seen
    assert len(levels) == 2 and abs(levels[0] - 20) < 3 and abs(levels[1] - 100) < 3
    assert video.frame(time.monotonic())[0] == 4
    video.close()
    assert not notes


def test_rate_cap_refuses_floods_with_one_notification():
    now = [100.0]
    video, notes, _, _ = _video(limits=VideoLimits(max_messages_per_second=5), clock=lambda: now[0])
    video.start()
    text = encode_frame(_image(90))
    kept = []
    for seq in range(20):
        kept.append(video.receive(text.replace("v 0 ", f"v {seq} ", 1)))
        now[0] += 0.01
    assert sum(kept) == 5 and video.refused == 15
    assert len(notes) == 1 and "more than 5 frames a second" in notes[0][1]
    now[0] += 2.0  # a second later the page may send again
    assert video.receive(text.replace("v 0 ", "v 99 ", 1))
    video.close()


def test_a_frame_that_does_not_decode_is_refused_and_the_worker_goes_on():
    video, notes, _, _ = _video()
    video.start()
    bad = "v 0 1.0 " + base64.b64encode(b"\xff\xd8\xff\xc0" + bytes(30)).decode()
    assert video.receive(bad)  # the form is fine; the image is checked by the worker
    _wait(lambda: video.refused == 1)
    video.receive(encode_frame(_image(100), seq=1))
    _wait(lambda: video.frame(time.monotonic()) is not None)
    assert len(notes) == 1 and notes[0][0] == "Webcam frame refused"
    video.close()


def test_no_face_keeps_the_last_pose_briefly_then_lets_idle_motion_back():
    now = [50.0]
    video, _, _, _ = _video(clock=lambda: now[0])
    video.start()
    video.receive(encode_frame(_image(100), seq=0))
    _wait(lambda: video.tracked == 1)
    video.receive(encode_frame(_image(0), seq=1))  # a dark frame: the tracker finds no face
    _wait(lambda: video.tracked == 2)
    assert video.frame(now[0])[0] == 0
    now[0] += 1.0
    assert video.frame(now[0]) is None
    video.close()


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("NotAllowedError", "denied"),
        ("NotFoundError", "no camera"),
        ("NoMediaDevices", "127.0.0.1"),
        ("Weird", "Weird"),
    ],
)
def test_camera_errors_get_a_clear_message(name, words):
    video, notes, _, statuses = _video()
    video.start()
    video.receive(f"e {name}")
    assert not video.active and notes[-1][0] == "Camera unavailable" and words in notes[-1][1]
    assert notes[-1][2] == "error" and statuses[-1][0] == "camera: unavailable"
    video.close()


def test_without_a_tracker_mirror_me_says_so():
    notes = []
    video = LiveVideo(None, lambda t, b, level="info": notes.append((t, b, level)))
    assert not video.start() and not video.active and "not available" in notes[0][0]


def test_a_failing_tracker_stops_mirroring_with_a_message():
    def broken():
        raise RuntimeError("no face mesh")

    video, notes, commands, _ = _video(broken)
    video.start()
    _wait(lambda: not video.active)
    assert notes[-1][0] == "Mirror me stopped" and "no face mesh" in notes[-1][1] and commands[-1] == "stop"


# ----------------------------------------------------------------------------- sessions


def test_two_sessions_never_cross_and_close_frees_everything(tmp_path):
    from splattalk.viewer.loudness import LoudnessStream
    from splattalk.viewer.session import Resources, Session

    FakeTracker.instances.clear()
    avatar = small_avatar(600)
    dim = avatar.head.num_expr + 6
    res = Resources(avatar=avatar, streams=lambda style: LoudnessStream(dim), mirror=lambda: FakeTracker(dim))
    a_view, b_view = RecordingView(), RecordingView()
    a = Session(res, a_view, tmp_path / "a").start()
    b = Session(res, b_view, tmp_path / "b").start()
    try:
        a.mirror_me()
        b.mirror_me()
        keys = set()
        deadline = time.monotonic() + 10
        for seq in range(1000):  # the pages keep sending until both sessions show mirrored frames
            a.mirror.receive(encode_frame(_image(200), seq=seq))
            b.mirror.receive(encode_frame(_image(40), seq=seq))
            time.sleep(0.04)
            keys |= {s._last_key[0] for s in (a, b) if s._last_key is not None and s._last_key[0] == "mirror"}
            if len(keys) and a.mirror.tracked > 3 and b.mirror.tracked > 3 and a_view.frames and b_view.frames:
                break
            assert time.monotonic() < deadline, "the sessions did not mirror"
        ja = a.mirror.frame(time.monotonic())[1][-3]
        jb = b.mirror.frame(time.monotonic())[1][-3]
        assert ja == pytest.approx(200 / 255, abs=0.02) and jb == pytest.approx(40 / 255, abs=0.02)
        assert a._state_name() == "mirror" and keys == {"mirror"}
        trackers = list(FakeTracker.instances)
        assert len(trackers) == 2
        levels = [sorted({round(v) for v in t.seen}) for t in trackers]
        assert sorted(levels) == [[40], [200]], "each tab's tracker saw only its own frames"
    finally:
        a.close()
        b.close()
    assert not a.threads and not b.threads and not a.mirror.worker.is_alive() and not b.mirror.worker.is_alive()
    assert all(t.closed for t in FakeTracker.instances)
    assert not (tmp_path / "a").exists() and not a_view.errors() and not b_view.errors()


def test_memory_stays_flat_over_a_long_stream():
    """Simulated minutes of 25 fps frames: the session keeps one waiting frame and bounded statistics."""
    import tracemalloc

    now = [0.0]
    video, notes, _, _ = _video(clock=lambda: now[0])
    video.start()
    texts = [encode_frame(_image(60 + i, 48, 64), seq=0) for i in range(8)]
    sizes = []
    tracemalloc.start()
    try:
        for seq in range(3000):  # 2 simulated minutes
            video.receive(texts[seq % 8].replace("v 0 ", f"v {seq} ", 1))
            now[0] += 0.04
            if seq % 1000 == 999:
                time.sleep(0.05)  # let the worker catch up
                sizes.append(tracemalloc.get_traced_memory()[0])
        _wait(lambda: video.slot is None)  # the last frame is tracked
    finally:
        tracemalloc.stop()
        video.close()
    assert video.received == 3000 and video.tracked > 10 and video.refused == 0 and not notes
    assert video.tracked + video.dropped == video.received, "every frame was tracked or replaced by a newer one"
    assert len(video._times) <= 30 and len(video.track_ms) <= 50
    assert sizes[-1] - sizes[0] < 200_000, f"memory grew by {sizes[-1] - sizes[0]} bytes"
