"""Audio sync without a browser: report parsing, the clock mapping, the player's state machine, the page HTML."""

from __future__ import annotations

import io

import numpy as np
import pytest

from splattalk.viewer import audio_sync, idle
from splattalk.viewer.audio_sync import AudioClock, ClockReport, parse_report
from splattalk.viewer.playback import LEAD_SAMPLES, PAGE_GRACE, RESUME_FRAMES, Player
from splattalk.viewer.talking import Clip

D = 32


def report(
    clip=1, applied=0, t=0.0, paused=False, ended=False, page_ms=0.0, blocked=False, ready=4, drawn=None
) -> ClockReport:
    return ClockReport(clip, applied, t, paused, ended, page_ms, blocked, ready, drawn, 0 if drawn is None else 1)


def ready_clip(seconds: float = 4.0, ready: int | None = None) -> Clip:
    clip = Clip(np.zeros(int(seconds * 16000), np.float32), "test", D)
    n = clip.num_frames if ready is None else ready
    clip.append(np.ones((n, D), np.float32) * np.arange(n)[:, None], clip.generation)
    if ready is None:
        clip.finish(None, clip.generation)
    return clip


# ----------------------------------------------------------------------------- reports


def test_parse_report_roundtrip_and_rejects_garbage():
    r = parse_report("3 7 1.2500 0 0 12345.6 0 4 -31:3")
    assert r == ClockReport(3, 7, 1.25, False, False, 12345.6, False, 4, -0.031, 3)
    assert parse_report("0 -1 0 1 0 9.5 0 0 x").drawn_offset is None
    for bad in (
        "",
        "none",
        "1 2 3",
        "1 2 abc 0 0 1 0 4 0",
        "1 2 1.0 0 0 1 0 4 0; rm -rf /",
        "x" * 500,
        None,
        "1 2 -1.0 0 0 1 0 4 0",
        "1 2 1.0 0 0 1 0 4 y",
        "1 2 1.0 0 0 1 0 4 99999999:1",
        "1 2 1.0 0 0 1 0 4 5",
        "1 2 1.0 0 0 1 0 4 5:",
    ):
        assert parse_report(bad) is None, bad


def test_clock_offset_is_the_least_delayed_report_and_position_extrapolates():
    clock = AudioClock()
    # Page clock = server clock - 100 s; delivery delays 30, 5, 60 ms.
    for page_t, delay, audio_t in ((1.0, 0.030, 0.5), (1.1, 0.005, 0.6), (1.2, 0.060, 0.7)):
        clock.update(report(page_ms=1000 * page_t, t=audio_t), now=100 + page_t + delay)
    assert clock.offset == pytest.approx(100.005)
    # The latest report read 0.7 s at page time 1.2 = server 101.205; half a second later:
    assert clock.position(101.705, clip=1) == pytest.approx(1.2, abs=1e-6)
    assert clock.position(101.705, clip=2) is None  # another clip's audio
    assert clock.position(100 + 1.26 + audio_sync.STALE_SECONDS + 0.1, clip=1) is None  # stale


def test_clock_holds_when_paused_or_loading():
    clock = AudioClock()
    clock.update(report(t=2.0, paused=True, page_ms=1000), now=10.0)
    assert clock.position(10.4, 1) == 2.0
    clock.update(report(t=2.0, ready=2, page_ms=1500), now=10.5)
    assert clock.position(10.9, 1) == 2.0


# ----------------------------------------------------------------------------- the player


def test_player_starts_when_frames_exist_and_follows_the_wall_clock():
    p = Player(latency=0.0)
    clip = ready_clip(4.0, ready=0)
    p.load(clip, now=0.0)
    assert p.tick(0.1) is None and not p.playing  # nothing generated yet
    clip.append(np.zeros((RESUME_FRAMES, D), np.float32), clip.generation)
    assert p.tick(0.2) == 0 and p.playing
    assert p.tick(0.2 + 0.5) == 12  # 0.5 s later, 25 fps
    assert p.desired().playing


def test_player_stalls_until_generation_catches_up():
    p = Player(latency=0.0)
    clip = ready_clip(8.0, ready=30)
    p.load(clip, 0.0)
    p.tick(0.0)
    assert p.tick(1.0) == 25
    frame = p.tick(1.5)  # frame 37 is not generated: hold the last one, audio paused
    assert p.stalled and frame == 29 and not p.desired().playing
    assert p.tick(3.0) == 29  # the playhead does not run on while stalled
    clip.append(np.zeros((40, D), np.float32), clip.generation)
    assert p.tick(3.1) is not None and not p.stalled and p.desired().playing
    assert p.tick(3.5) == pytest.approx(37 + 10, abs=1)


def test_pause_seek_loop_and_end():
    p = Player(latency=0.0)
    clip = ready_clip(2.0)
    p.load(clip, 0.0)
    p.tick(0.0)
    p.pause(1.0)
    assert p.tick(5.0) == 25 and not p.playing
    p.seek(0.4, 5.0)
    assert p.tick(6.0) == 10
    seq = p.desired().seek_seq
    p.play(6.0)
    assert p.desired().seek_seq > seq and p.desired().seek == pytest.approx(0.4)
    assert p.tick(8.0) is None and p.ended  # 0.4 + 2.0 > 2 s: the end, back to idle motion
    p.set_loop(True)
    p.play(8.0)
    assert p.tick(8.0 + 2.5) == 12  # wrapped: 2.5 s into a 2 s clip


def test_page_reports_drive_the_playhead_and_user_actions_in_the_page_are_adopted():
    p = Player(latency=0.0)
    clip = ready_clip(4.0)
    p.load(clip, 0.0)
    p.clock.update(report(clip=0, applied=0, page_ms=0.0), now=0.0)  # a page is connected
    p.tick(0.0)
    seq = p.desired().seq
    # The page has not applied the play state yet: the playhead waits (up to PAGE_GRACE).
    assert p.tick(0.5) == 0
    # It plays: audio at 0.2 s read at page time 0.6 s (server = page here).
    p.report(report(clip=clip.id, applied=seq, t=0.2, page_ms=600.0), now=0.61)
    assert p.tick(0.8) == 10  # 0.2 + (0.8 - 0.6) = 0.4 s
    # The user pauses with the audio element's own controls.
    p.report(report(clip=clip.id, applied=seq, t=0.5, paused=True, page_ms=900.0), now=0.91)
    assert not p.playing and p.tick(2.0) == 12
    # Reports about an older state are not adopted.
    p.report(report(clip=clip.id, applied=seq - 1, t=3.0, page_ms=2000.0), now=2.01)
    assert not p.playing


def test_without_a_page_the_wall_clock_takes_over_after_the_grace_period():
    p = Player(latency=0.0)
    clip = ready_clip(10.0)
    p.load(clip, 0.0)
    p.clock.update(report(clip=0, page_ms=0.0), now=0.0)
    p.tick(0.0)
    assert p.tick(PAGE_GRACE + 1.0) == 25  # held for PAGE_GRACE, then ran 1 s


def test_lead_follows_the_displayed_offset():
    p = Player(latency=0.03)
    clip = ready_clip(20.0)
    p.load(clip, 0.0)
    p.tick(0.0)
    seq = p.desired().seq

    # The page shows frames 0.3 s behind its audio (a slow page): the lead grows towards that delay.
    def run(delay: float, start: float, reports: int) -> None:
        for k in range(reports):
            t = start + 0.05 * k
            shown = int((t - delay + p.lead) * 25)  # the frame sent `delay` ago, drawn now
            p.report(report(clip=clip.id, applied=seq, t=t, page_ms=1000 * t, drawn=(shown + 0.5) / 25 - t), now=t)

    run(0.3, 1.0, 6 * LEAD_SAMPLES)
    assert p.lead == pytest.approx(0.3, abs=0.05)
    # The page slows down further: a large offset moves the lead by all of it, in one adjustment.
    run(0.5, 5.0, LEAD_SAMPLES)
    assert p.lead == pytest.approx(0.5, abs=0.05)


# ----------------------------------------------------------------------------- the page side


def test_webm_opus_round_trip_keeps_the_duration():
    import av

    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000 * 3) / 16000)).astype(np.float32)
    data = audio_sync.encode_webm_opus(audio)
    assert data[:4] == b"\x1a\x45\xdf\xa3"  # EBML (WebM) magic
    assert len(data) < 3 * 6000  # ~32 kbit/s
    with av.open(io.BytesIO(data)) as c:
        decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
        rate = c.streams.audio[0].rate
    assert decoded.shape[0] / rate == pytest.approx(3.0, abs=0.03)


def test_page_html_escapes_labels_and_carries_the_controller():
    html = audio_sync.player_html(5, "data:audio/webm;base64,AAAA", 'a"><img src=x onerror=alert(1)>.wav')
    assert 'data-clip="5"' in html and "<img src=x " not in html and "&lt;img src=x" in html
    assert 'onerror="' in html and "__splattalk" in html and "<script" not in html
    state = audio_sync.state_html(3, 5, True, False, 2, 1.5)
    assert "playing:true" in state and "seekSeq:2" in state and "seek:1.5000" in state


# ----------------------------------------------------------------------------- idle motion


def test_idle_motion_blinks_and_sways_within_bounds():
    names = ("mouth_open", "blink_left", "blink_right")
    ids = idle.blink_channels(names)
    assert ids == (1, 2)
    t = np.arange(0, 60, 0.04)
    rows = np.stack([idle.idle_motion(x, 9, ids) for x in t])
    closure = rows[:, 1]
    assert closure.min() == 0 and 0.95 < closure.max() <= 1 and np.array_equal(rows[:, 1], rows[:, 2])
    starts = np.flatnonzero((closure[1:] > 0.5) & (closure[:-1] <= 0.5))
    gaps = np.diff(t[starts])
    assert len(starts) >= 60 / idle.BLINK_INTERVAL[1] - 1 and gaps.min() > idle.BLINK_INTERVAL[0] - 0.2
    sway = np.degrees(rows[:, 3:6])
    assert np.abs(sway).max(0).tolist() <= [a * 1.01 for a in idle.SWAY_DEG] and sway.std(0).min() > 0.1
    assert np.all(rows[:, 0] == 0) and np.all(rows[:, 6:] == 0)  # no mouth, no jaw
    assert idle.blink_channels(None) == () and np.all(idle.idle_motion(1.23, 9)[:3] == 0)
