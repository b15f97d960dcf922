"""Talk live, without a browser: message decoding and limits, the live mouth, per-session isolation."""

from __future__ import annotations

import time

import numpy as np
import pytest
from viewer_helpers import ROOT, RecordingView, small_avatar, speech_like

from splattalk.viewer.live_audio import (
    LiveLimits,
    LiveMic,
    LiveMouth,
    LiveRefused,
    decode_chunk,
    encode_chunk,
)

SPEECH = ROOT / "splattalk" / "data" / "speech" / "sample_en_1.wav"
CHUNK = 640
"""The page's message: one 40-ms frame (live_page.CHUNK_SAMPLES)."""


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _speech() -> np.ndarray:
    from splattalk.talk.audio import load_audio

    return load_audio(SPEECH)


def _messages(audio: np.ndarray, overlap: bool = True):
    """Messages as the page writes them: each with the previous chunk too (page ms = 1000·end/16000)."""
    prev_start = 0
    for start in range(0, audio.shape[0] - CHUNK + 1, CHUNK):
        first = prev_start if overlap else start
        yield encode_chunk(audio[first : start + CHUNK], first, 1000.0 * (start + CHUNK) / 16000, seq=start // CHUNK)
        prev_start = start


def _drive(mic: LiveMic, clock: FakeClock, audio: np.ndarray) -> np.ndarray:
    """Feed ``audio`` in real time; the opening after each message."""
    out = []
    for text in _messages(audio):
        clock.t += CHUNK / 16000
        mic.receive(text)
        out.append(mic.opening)
    return np.array(out)


def _mic(**kw) -> tuple[LiveMic, list, FakeClock]:
    notes = []
    clock = FakeClock()
    mic = LiveMic(56, None, lambda *a: notes.append(a), clock=clock, **kw)
    mic.start()
    return mic, notes, clock


# ----------------------------------------------------------------------------- decoding and limits


def test_chunk_round_trip():
    rng = np.random.default_rng(0)
    x = rng.integers(-32768, 32767, 2048).astype(np.int16)
    chunk = decode_chunk(encode_chunk(x, 4096, 1234.5, seq=7, lag_ms=180))
    assert (chunk.seq, chunk.start, chunk.end, chunk.page_ms, chunk.page_lag_ms) == (7, 4096, 6144, 1234.5, 180.0)
    np.testing.assert_array_equal(chunk.samples, x)
    assert decode_chunk(encode_chunk(x, 0, 1.0)).page_lag_ms is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a 1 2 3",
        "a 1 2 3.0 -1 !!!!",
        "a 1 2 3.0 -1 AAA",
        "a -1 0 3.0 -1 AAAA",
        "x 1 2 3.0 -1 AAAA",
        "a 1 2 3.0 -1 AA==",
        "a 1 2 3.0 -1 AAAA\n",
    ],
)
def test_malformed_messages_are_refused(text):
    with pytest.raises(LiveRefused):
        decode_chunk(text)


def test_oversize_message_is_refused_and_reported_once():
    mic, notes, _ = _mic(limits=LiveLimits(max_message_chars=6000))
    big = encode_chunk(np.zeros(8000, np.int16), 0, 500.0)  # 0.5 s: 21 336 characters of base64
    assert len(big) > 6000
    assert mic.receive(big) == 0 and mic.receive(big) == 0
    assert mic.refused == 2 and len(notes) == 1 and "characters" in notes[0][1] and notes[0][2] == "warning"
    assert mic.receive(encode_chunk(np.zeros(1280, np.int16), 0, 80.0)) == 2  # a normal one still works


def test_message_rate_and_audio_rate_are_capped():
    mic, _, _ = _mic()
    small = [encode_chunk(np.zeros(640, np.int16), 640 * i, 40.0 * i) for i in range(40)]
    taken = sum(mic.receive(t) for t in small)  # 40 messages in the same instant
    assert mic.refused == 40 - LiveLimits().max_messages_per_second and taken == LiveLimits().max_messages_per_second
    mic2, _, clock2 = _mic()
    # 8 × 0.5 s of audio within 2 s of wall time: more than 1.5× real time gets refused
    fast = [encode_chunk(np.zeros(8000, np.int16), 8000 * i, 500.0 * i) for i in range(8)]
    for t in fast:
        clock2.t += 0.25
        mic2.receive(t)
    assert mic2.refused >= 2 and mic2.frames < 8 * 12.5


def test_overlap_is_not_counted_twice_and_a_lost_message_is_survived():
    audio = speech_like(3.0)
    mic, _, clock = _mic()
    msgs = list(_messages(audio))
    for i, t in enumerate(msgs):
        clock.t += CHUNK / 16000
        if i != 10:  # one message overwritten by viser's throttle: the next one carries its audio too
            mic.receive(t)
    assert mic.refused == 0
    assert mic.frames == (len(msgs) * CHUNK) // 640
    assert mic.received == len(msgs) * CHUNK


def test_inactive_mic_ignores_audio_and_page_errors_notify():
    notes = []
    mic = LiveMic(56, None, lambda *a: notes.append(a), clock=FakeClock())
    assert mic.receive(encode_chunk(np.zeros(1280, np.int16), 0, 80.0)) == 0 and mic.frame(0.0) is None
    mic.start()
    mic.receive("e NotAllowedError")
    assert (
        not mic.active
        and notes[-1][0] == "Microphone unavailable"
        and "allow" in notes[-1][1]
        and notes[-1][2] == "error"
    )
    mic.start()
    mic.receive("e NotFoundError")
    assert "no microphone" in notes[-1][1]
    mic.start()
    mic.receive("s")
    assert not mic.active


# ----------------------------------------------------------------------------- the live mouth


def test_speech_opens_the_mouth_and_follows_its_loudness():
    audio = _speech()
    openings = LiveMouth().frames(audio)
    assert openings.max() > 0.8
    assert 0.2 < (openings > 0.3).mean() < 0.9
    frames = audio[: openings.shape[0] * 640].reshape(-1, 640)
    envelope = np.sqrt((frames.astype(np.float64) ** 2).mean(1))
    assert np.corrcoef(openings, envelope)[0, 1] > 0.7


@pytest.mark.parametrize("noise_rms", [0.0, 0.003, 0.02, 0.08])
def test_silence_and_steady_noise_keep_the_mouth_nearly_closed(noise_rms):
    rng = np.random.default_rng(1)
    noise = (noise_rms * rng.standard_normal(16000 * 6)).astype(np.float32)
    openings = LiveMouth().frames(noise)
    assert np.percentile(openings[50:], 95) < 0.1, openings.max()  # the floor is learnt within 2 s


def test_speech_over_noise_still_opens_the_mouth():
    rng = np.random.default_rng(2)
    speech = _speech()
    noisy = speech + (0.01 * rng.standard_normal(speech.shape[0])).astype(np.float32)
    assert (LiveMouth().frames(noisy) > 0.3).mean() > 0.15


def test_mic_frame_is_the_newest_and_closes_when_the_audio_stops():
    mic, _, clock = _mic()
    mic.open_channel = 3
    openings = _drive(mic, clock, _speech()[: 16000 * 3])
    assert openings.max() > 0.8
    key, row, page_ms = mic.frame(clock.t)
    assert (
        key == ("live", mic.frames)
        and row[56 - 3] == pytest.approx(0.30 * openings[-1])
        and row[3] == pytest.approx(0.6 * openings[-1])
    )
    # the newest frame's centre: 20 ms + what is left after the last whole frame before the message's end
    assert page_ms is not None and 1000.0 * mic.received / 16000 - page_ms < 60
    clock.t += 1.0  # the page stopped sending
    key, row, page_ms = mic.frame(clock.t)
    assert key is None and not row.any() and page_ms is None


# ----------------------------------------------------------------------------- sessions


def test_two_sessions_one_microphone_moves_only_its_own_avatar(tmp_path):
    from splattalk.viewer.live_audio import JAW_MAX_RAD
    from splattalk.viewer.loudness import LoudnessStream
    from splattalk.viewer.session import Resources, Session

    avatar = small_avatar(600)
    res = Resources(avatar=avatar, streams=lambda style: LoudnessStream(avatar.head.expr_dim + 6))
    clock = FakeClock(10.0)
    a_view, b_view = RecordingView(), RecordingView()
    a = Session(res, a_view, tmp_path / "a", clock=clock)
    b = Session(res, b_view, tmp_path / "b", clock=clock)
    try:
        a.talk_live()
        b.talk_live()
        speech = _speech()[: 16000 * 2]
        jaws_a, jaws_b = [], []
        for text in _messages(speech):
            clock.t += CHUNK / 16000
            a.live.receive(text)
            b.live.receive(encode_chunk(np.zeros(2 * CHUNK, np.int16), 0, 1.0))  # b's page is silent
            for s, jaws in ((a, jaws_a), (b, jaws_b)):
                live = s.live.frame(clock.t)
                jaws.append(live[1][-3])
                s.step(clock.t)
        assert max(jaws_a) > 0.5 * JAW_MAX_RAD and max(jaws_b) == 0.0
        assert a_view.frames > 0 and b_view.frames > 0 and not a_view.errors() and not b_view.errors()
        # a: 2 s of 40-ms frames; b got only its own (repeated) silent message: 2 frames
        assert a.live.frames == (16000 * 2 // CHUNK) * CHUNK // 640 and b.live.frames == 2 * CHUNK // 640
    finally:
        a.close()
        b.close()
    assert not (tmp_path / "a").exists() and not a.live.active


def test_live_session_threads_stop_and_memory_stays_flat(tmp_path):
    """A long live stream keeps a bounded buffer (2 s) and the session closes cleanly."""
    from splattalk.viewer.loudness import LoudnessStream
    from splattalk.viewer.session import Resources, Session

    avatar = small_avatar(600)
    res = Resources(avatar=avatar, streams=lambda style: LoudnessStream(avatar.head.expr_dim + 6))
    view = RecordingView()
    s = Session(res, view, tmp_path / "s").start()
    s.talk_live()
    audio = speech_like(30.0)
    for text in _messages(audio):
        s.live.receive(text)
        time.sleep(0.0005)
    assert s.live.pending.shape[0] < 640 and len(s.live._audio_in) <= 100
    s.close()
    assert not s.threads


# -----------------------------------------------------------------------------
# lip shapes from the talk model's read-out


@pytest.fixture(scope="module")
def talk_model():
    import torch

    from splattalk.models import DEFAULT_MODEL
    from splattalk.talk.checkpoint import load_talk_checkpoint

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_talk_checkpoint(DEFAULT_MODEL)
    torch.set_num_threads(threads)


def _readout_mic(model):
    from splattalk.viewer.live_readout import readout_factory

    clock = FakeClock()
    mic = LiveMic(model.cfg.motion_dim, 0, lambda *a: None, clock=clock, readout=readout_factory(model))
    mic.start()
    return mic, clock


def test_readout_mouth_follows_the_offline_model(talk_model):
    """Live (no lookahead, one message at a time) against the model's own offline motion for the same speech."""
    from splattalk.talk.inference import generate

    speech = _speech()
    offline = np.asarray(generate(talk_model, speech))
    jaw = talk_model.cfg.motion_dim - 3
    mic, clock = _readout_mic(talk_model)
    live = []  # the newest frame after each message, against the offline frame of the same time
    for text in _messages(speech):
        clock.t += CHUNK / 16000
        mic.receive(text)
        _, row, _ = mic.frame(clock.t)
        live.append((mic.frames - 1, row[jaw]))
    frames, jaws = np.array(live).T
    target = offline[frames.astype(int), jaw]
    r = np.corrcoef(jaws, target)[0, 1]
    loud = np.corrcoef(LiveMouth().frames(speech)[frames.astype(int)], target)[0, 1]
    print(f"\nlive jaw vs the offline model's: read-out r = {r:.2f}, loudness r = {loud:.2f}")
    assert r > 0.6 and r > loud + 0.2
    assert jaws.max() > 0.5 * target.max()


def test_readout_mouth_is_closed_for_silence_and_noise(talk_model):
    rng = np.random.default_rng(3)
    noise = (0.01 * rng.standard_normal(16000 * 4)).astype(np.float32)
    silence = np.zeros(16000 * 3, np.float32)
    cases = {
        "silence": (np.zeros(16000 * 4, np.float32), 1),
        "noise": (noise, 1),
        # noise right after silence (the floor lags), starting on a frame boundary and mid-frame
        "onset": (np.concatenate([silence, noise]), 1),
        "onset mid-frame": (np.concatenate([silence[:-320], noise]), 1),
        # …and delivered six frames a message, as a page that falls behind sends it (only the newest is read out)
        "onset in bursts": (np.concatenate([silence[:-320], noise]), 6),
    }
    for name, (audio, burst) in cases.items():
        mic, clock = _readout_mic(talk_model)
        rows = []
        for i, text in enumerate(_messages(audio)):
            clock.t += CHUNK / 16000
            if (i + 1) % burst:
                continue  # this message is overwritten by the next one (it carries the newest two chunks only)
            mic.receive(text)
            rows.append(np.abs(mic.frame(clock.t)[1]).max())
        # nearly closed: speech opens it past 0.5. Noise right after silence reads as speech for a frame while the
        # gate learns the floor: the read-out's speech must hold for two read-outs before the mouth opens
        assert max(rows[32 // burst :]) < 0.06, (name, max(rows))
