"""Talk live's 40-ms messages through two lanes: order, the wake-up of the playback thread, lips shown once read."""

from __future__ import annotations

import numpy as np
from viewer_helpers import RecordingView, small_avatar, speech_like

from splattalk.viewer.live_audio import LIVE_LABELS, LiveLimits, LiveMic, encode_chunk
from splattalk.viewer.live_page import CHUNK_SAMPLES, live_js
from splattalk.viewer.page_transport import LANE_GAP_MS, THROTTLE_MS

CHUNK = CHUNK_SAMPLES


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _messages(audio: np.ndarray):
    """As the page writes them: each 40-ms chunk with the previous one (page ms = 1000·end/16000)."""
    prev = 0
    for start in range(0, audio.shape[0] - CHUNK + 1, CHUNK):
        yield encode_chunk(audio[prev : start + CHUNK], prev, 1000.0 * (start + CHUNK) / 16000, seq=start // CHUNK)
        prev = start


class FakeReadout:
    """Stands in for ``live_readout.ReadoutMouth``: the mouth is the newest sample's magnitude on channel 0."""

    def __init__(self):
        self.last = 0.0
        self.calls = 0

    def push(self, audio):
        self.last = float(abs(audio[-1]))

    def reset(self):
        self.last = 0.0

    def mouth(self):
        self.calls += 1
        row = np.zeros(8, np.float32)
        row[0] = 1.0 + self.last
        return row, 1.0


def test_the_page_cadence_fits_the_caps_and_the_throttle():
    assert CHUNK == 640  # one talk-model frame: a frame leaves the page as soon as its last sample is captured
    per_second = 16000 / CHUNK
    assert per_second <= LiveLimits().max_messages_per_second
    # each lane gets every len(LIVE_LABELS)-th message: never two within viser's 50-ms throttle
    assert len(LIVE_LABELS) * 1000 / per_second >= LANE_GAP_MS > THROTTLE_MS
    js = live_js()
    assert all(label in js for label in LIVE_LABELS)
    assert "audioWorklet" in js and "registerProcessor" in js and "createScriptProcessor" in js  # + fallback


def test_lanes_out_of_order_lose_nothing_and_count_nothing_twice():
    audio = speech_like(2.0)
    msgs = list(_messages(audio))
    woken = []
    clock = FakeClock()
    mic = LiveMic(56, None, lambda *a: None, clock=clock, on_frame=lambda: woken.append(1))
    mic.start()
    order = []
    for i in range(0, len(msgs) - 1, 2):  # the second lane's message is handled first
        order += [msgs[i + 1], msgs[i]]
    got = []
    for text in order:
        clock.t += CHUNK / 16000
        got.append(mic.receive(text))
    assert mic.refused == 0
    assert mic.received == len(order) * CHUNK and mic.frames == len(order) * CHUNK // 640
    # the later message carries both chunks (2 frames); the earlier one, handled after it, adds nothing
    assert got[::2] == [2] * (len(order) // 2) and got[1::2] == [0] * (len(order) // 2)
    assert len(woken) == len(order) // 2  # the playback thread is woken once per message with new frames


def test_a_frame_is_shown_only_once_its_lips_are_read_out():
    clock = FakeClock()
    readouts = []

    def factory():
        readouts.append(FakeReadout())
        return readouts[-1]

    mic = LiveMic(8, None, lambda *a: None, clock=clock, readout=factory)
    mic.start()
    assert mic.frame(clock.t)[0] is None  # nothing read out yet
    loud = np.full(3 * CHUNK, 0.3, np.float32)
    for i, text in enumerate(_messages(loud)):
        clock.t += CHUNK / 16000
        mic.receive(text)
        key, row, page_ms = mic.frame(clock.t)
        assert key == ("live", i + 1)  # the frame number of the lips shown, with them
        # speech must hold for two read-outs before the mouth opens (a noise onset reads as speech for one)
        assert row[0] == 0.0 if i == 0 else row[0] > 1.0
        assert page_ms == mic.lips_newest[1] == mic.newest[1]
    assert readouts[0].calls == 3


def test_a_new_mouth_frame_wakes_the_playback_thread(tmp_path):
    from splattalk.viewer.loudness import LoudnessStream
    from splattalk.viewer.session import Resources, Session

    avatar = small_avatar(300)
    res = Resources(avatar=avatar, streams=lambda style: LoudnessStream(avatar.head.expr_dim + 6))
    s = Session(res, RecordingView(), tmp_path / "s")  # not started: nothing clears the event
    try:
        s.talk_live()
        assert not s._wake.is_set()
        msgs = list(_messages(speech_like(0.2)))
        s.live.receive(msgs[0])
        assert s._wake.is_set()
    finally:
        s.close()


def test_frames_are_paced_by_what_the_page_has_drawn():
    from splattalk.viewer.live_audio import ACK_TIMEOUT, IN_FLIGHT, STALE_FPS, decode_chunk

    assert decode_chunk(encode_chunk(np.zeros(640, np.int16), 0, 40.0, drawn_ms=1234.5)).drawn_ms == 1234.5
    assert decode_chunk(encode_chunk(np.zeros(640, np.int16), 0, 40.0)).drawn_ms is None
    assert IN_FLIGHT >= 2  # one at a time left the page idle while the ack travelled back (docs/live.md)
    clock = FakeClock()
    mic = LiveMic(56, None, lambda *a: None, clock=clock)
    mic.start()
    audio = speech_like(1.0)
    msgs = list(_messages(audio))
    sent = []
    for i in range(IN_FLIGHT):  # the page draws nothing yet: IN_FLIGHT frames go, then the session waits
        mic.receive(msgs[i])
        key, _, page_ms = mic.frame(clock.t)
        assert mic.may_send(clock.t), i
        mic.shown(page_ms)  # sent: in flight until the page says it drew it
        sent.append(page_ms)
        clock.t += 0.04
    assert len(set(sent)) == IN_FLIGHT
    assert not mic.may_send(clock.t)

    def ack(i: int, drawn_ms: float) -> None:
        first = int(msgs[i].split()[2])
        chunk = audio[first : first + 2 * CHUNK]
        mic.receive(encode_chunk(chunk, first, 1000.0 * (first + 2 * CHUNK) / 16000, seq=i, drawn_ms=drawn_ms))

    ack(IN_FLIGHT, sent[0])  # the oldest drawn: one more may go
    assert mic.may_send(clock.t)
    mic.shown(mic.frame(clock.t)[2])
    assert not mic.may_send(clock.t)
    clock.t += 0.04
    ack(IN_FLIGHT + 1, mic.frame(clock.t)[2])  # the newest drawn: everything sent before it was drawn too
    assert mic.may_send(clock.t)
    for _ in range(IN_FLIGHT):
        mic.shown(mic.frame(clock.t)[2])
    assert not mic.may_send(clock.t) and mic.may_send(clock.t + ACK_TIMEOUT + 0.01)  # lost acks do not stall it
    # no audio for a while (a page that fell behind): frames at most STALE_FPS a second
    clock.t += 1.0
    assert mic.frame(clock.t)[0] is None and mic.may_send(clock.t)
    mic.shown(None)
    assert not mic.may_send(clock.t + 0.5 / STALE_FPS) and mic.may_send(clock.t + 1.0 / STALE_FPS)
