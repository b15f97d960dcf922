"""Talk live: the page's microphone drives the avatar's mouth, server side.

The page (``live_page.py``) captures the microphone, resamples it to 16 kHz mono int16 and writes a message
every 40 ms (one talk-model frame) into one of two hidden viser text inputs, each in a panel of its own, in
turn (``page_transport.py``: viser sends each panel's newest value at most every 50 ms, so a message can still
be overwritten before it leaves when the page falls behind: each message carries the newest *two* chunks,
with the page's index of its first sample, and the server keeps only samples it has not had yet; messages of
the two lanes may be handled out of order, which the index also sorts out).

    a <seq> <first sample> <page ms of the last sample> <page lag ms or -1> <drawn audio ms or -1> <base64 int16 LE>
    e <error name>        the microphone could not start (denied, absent, …)
    s                     the page stopped capturing

:class:`LiveMic` (one per tab session) checks each message against :class:`LiveLimits` (size, message rate,
audio rate: a client cannot make the server buffer more than a couple of seconds; nothing is written to disk)
and turns the newest complete 40-ms frame into a mouth: the talk model's read-out
(``live_readout.ReadoutMouth``) when there is one, gated by :class:`LiveMouth`'s voice activity, else the jaw
following the frame's loudness above :class:`LiveMouth`'s adaptive noise gate (2× a noise floor that follows
quieter frames at once and rises slowly), so silence and steady background noise keep the mouth closed while
speech opens it. As soon as a message gives a new frame, ``on_frame()`` wakes the session's playback thread,
which sends it — unless :data:`IN_FLIGHT` frames sent are not drawn by the page yet (``may_send``: each message
acks the newest mouth the page drew; docs/live.md has the measured latency).
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from splattalk.talk.config import SAMPLE_RATE, SAMPLES_PER_FRAME
from splattalk.viewer.live_readout import SPEECH_RANGE, speech_gain
from splattalk.viewer.loudness import JAW_MAX_RAD

LIVE_LABELS = ("live audio", "live audio 2")
"""Labels of the hidden text inputs the page writes its microphone messages into, in turn."""
STALE_SECONDS = 0.3
"""No audio for this long: the mouth closes (the page stopped, lagged or is gone)."""
ACK_TIMEOUT = 0.25
"""Longest wait for the page to draw a mouth frame sent: after it, the frame no longer counts as in flight."""
IN_FLIGHT = 3
"""Mouth frames sent and not yet drawn by the page, at most. One at a time left the page idle while an ack
travelled back and the next frame came (median mic→mouth 376 ms in headless Chromium); three keep one on the
wire, one being handled and one being drawn (186–208 ms); more only queue (4: 261, unlimited: 260;
``scripts/bench_live.py``, docs/live.md)."""
STALE_FPS = 8.0
"""Frames a second while live but without fresh audio (a page that fell behind gets time to catch up)."""
FLOOR_RISE = 1.10
"""The noise floor follows a quieter frame at once and rises by at most 10 % a frame: a new steady noise is
learnt in about a second (0.01 after silence: ~0.3 s), while speech's dips between syllables hold it down."""
GATE_OVER_FLOOR = 2.0
"""The mouth stays closed below this multiple of the noise floor (steady noise never opens it)."""
ABSOLUTE_GATE_RMS = 0.006
"""…and below this frame RMS (≈ −44 dBFS: a quiet room)."""
MIN_REFERENCE_RMS = 0.06
"""Frame RMS that opens the mouth fully, at the least (a louder speaker raises it: see ``peak``)."""
PEAK_DECAY = 0.995
"""Per-frame decay of the loudness reference (half-life ≈ 5.5 s)."""
RELEASE = 0.55
"""Share of the previous opening kept per frame when the sound gets quieter (attack is instant)."""
VOICE_RELEASE = 0.75
"""Share of the voice activity kept per frame below the gate (quiet consonants between voiced frames stay in)."""
OPEN_CHANNEL_GAIN = 0.6
"""Opening of the head's ``mouth_open`` expression at full level (as ``loudness.LoudnessStream``)."""

_AUDIO = re.compile(
    r"^a (\d{1,9}) (\d{1,12}) (\d{1,12}(?:\.\d+)?) (-1|\d{1,6}) (-1|\d{1,12}(?:\.\d+)?) ([A-Za-z0-9+/]*={0,2})$"
)
_ERROR = re.compile(r"^e ([A-Za-z]{1,40})$")


@dataclass(frozen=True)
class LiveLimits:
    """What one tab may send (every limit is per session)."""

    max_message_chars: int = 24_000
    """Longest message accepted (0.5 s of int16 audio in base64 is 21 336 characters)."""
    max_messages_per_second: int = 40
    """The page sends 25 (one per 40-ms frame) and fewer when it falls behind; more is a misbehaving client."""
    max_audio_ratio: float = 1.5
    """New audio accepted per second of wall time (over the last 2 s), in seconds."""
    buffer_seconds: float = 2.0
    """Newest audio kept (the rest is dropped: memory stays flat however long a session talks)."""


@dataclass(frozen=True)
class LiveChunk:
    seq: int
    start: int
    """Page index (16 kHz samples since capture started) of the first sample."""
    page_ms: float
    """``performance.now()`` in the page when the last sample was captured."""
    page_lag_ms: float | None
    """The page's measured mic→mouth lag (median of its last draws), None before it has one."""
    drawn_ms: float | None
    """Audio ms (``frame()``'s third value) of the newest mouth the page has drawn, None before any."""
    samples: np.ndarray
    """``[n]`` int16."""

    @property
    def end(self) -> int:
        return self.start + self.samples.shape[0]


class LiveRefused(ValueError):
    """A message broke a limit or the format (the reason is user-facing)."""


def encode_chunk(
    samples: np.ndarray,
    start: int,
    page_ms: float,
    seq: int = 0,
    lag_ms: float | None = None,
    drawn_ms: float | None = None,
) -> str:
    """Float or int16 audio ``[n]`` → a message as the page writes it (tests and benchmarks)."""
    x = np.asarray(samples)
    if x.dtype != np.int16:
        x = np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)
    b64 = base64.b64encode(x.astype("<i2").tobytes()).decode("ascii")
    lag = -1 if lag_ms is None else round(lag_ms)
    drawn = -1 if drawn_ms is None else f"{drawn_ms:.1f}"
    return f"a {seq} {start} {page_ms:.1f} {lag} {drawn} {b64}"


def decode_chunk(text: str, limits: LiveLimits = LiveLimits()) -> LiveChunk:
    """Parse an audio message (it comes from the client: never trusted). Raises :class:`LiveRefused`."""
    if not isinstance(text, str):
        raise LiveRefused("not text")
    if len(text) > limits.max_message_chars:
        raise LiveRefused(f"a message of {len(text)} characters (at most {limits.max_message_chars})")
    m = _AUDIO.match(text)
    if m is None:
        raise LiveRefused("a malformed audio message")
    seq, start, page_ms, lag, drawn, b64 = m.groups()
    try:
        raw = base64.b64decode(b64, validate=True)
    except binascii.Error as err:
        raise LiveRefused(f"bad base64 ({err})") from None
    if len(raw) % 2:
        raise LiveRefused("an odd number of audio bytes (int16 expected)")
    samples = np.frombuffer(raw, "<i2").astype(np.int16)
    return LiveChunk(
        int(seq),
        int(start),
        float(page_ms),
        None if lag == "-1" else float(lag),
        None if drawn == "-1" else float(drawn),
        samples,
    )


class LiveMouth:
    """Frame loudness → mouth opening in [0, 1], one 40-ms frame (640 samples at 16 kHz) at a time."""

    def __init__(self):
        self.floor = ABSOLUTE_GATE_RMS / GATE_OVER_FLOOR
        self.peak = MIN_REFERENCE_RMS
        self.opening = 0.0
        self.voice = 0.0
        """Voice activity in [0, 1]: 1 while the level is above the gate, then released over a few frames."""

    def gate(self) -> float:
        return max(ABSOLUTE_GATE_RMS, GATE_OVER_FLOOR * self.floor)

    def frame(self, samples: np.ndarray) -> float:
        """One frame ``[640]`` float in [-1, 1] → the opening after it."""
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
        self.floor = min(rms, self.floor * FLOOR_RISE) if rms > 0 else self.floor
        self.peak = max(rms, self.peak * PEAK_DECAY, MIN_REFERENCE_RMS)
        gate = self.gate()
        target = float(np.clip((rms - gate) / max(0.8 * self.peak - gate, 1e-6), 0.0, 1.0))
        self.opening = target if target > self.opening else RELEASE * self.opening + (1 - RELEASE) * target
        self.voice = 1.0 if rms > gate else VOICE_RELEASE * self.voice
        return self.opening

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Whole frames of ``audio [S]`` → openings ``[S // 640]`` (a trailing partial frame is ignored)."""
        n = audio.shape[0] // SAMPLES_PER_FRAME
        return np.array(
            [self.frame(audio[i * SAMPLES_PER_FRAME : (i + 1) * SAMPLES_PER_FRAME]) for i in range(n)], np.float32
        )


def mouth_row(opening: float, motion_dim: int, open_channel: int | None) -> np.ndarray:
    """The motion ``[D]`` an opening adds to a row: jaw (the last channel), and ``mouth_open`` if the head names it."""
    row = np.zeros(motion_dim, np.float32)
    row[motion_dim - 6 + 3] = JAW_MAX_RAD * opening
    if open_channel is not None:
        row[open_channel] = OPEN_CHANNEL_GAIN * opening
    return row


class LiveMic:
    """One tab's live microphone: receives its messages, keeps the newest mouth opening.

    ``notify(title, body, level)`` tells the person (viser notifications); ``command(action)`` asks the page to
    ``"start"`` or ``"stop"`` capturing; ``status(text, audio_ms)`` shows the state under the buttons, with the page
    time of the audio behind the mouth just sent (the page measures its lag from it).
    """

    def __init__(
        self,
        motion_dim: int,
        open_channel: int | None,
        notify,
        command=lambda action: None,
        status=lambda text, audio_ms: None,
        limits: LiveLimits = LiveLimits(),
        clock=time.monotonic,
        readout=None,
        on_frame=lambda: None,
    ):
        self.motion_dim = motion_dim
        self.readout = readout() if readout is not None else None
        """``live_readout.ReadoutMouth`` (lip shapes from the talk model's read-out), or None: the loudness jaw."""
        self.open_channel = open_channel
        self.notify, self.command, self.status = notify, command, status
        self.limits = limits
        self.clock = clock
        self.on_frame = on_frame
        """Called (no lock held) when a message gave a new mouth frame: the session sends it at once."""
        self.trace: list | None = None
        """Set to a list to record ``(page ms of the newest frame, page ms of the chunk's end, received,
        mouth ready)`` per message with new frames, wall-clock seconds (``scripts/bench_live.py``); then
        ``shown_trace`` gets ``(page ms of the frame, sent)`` per frame the session sent."""
        self.shown_trace: list = []
        self.lock = threading.Lock()
        self.active = False
        self._reset()

    def _reset(self) -> None:
        self.mouth = LiveMouth()
        self.lips: np.ndarray | None = None
        """The read-out's mouth ``[D]`` for the newest frame (None: none yet, or no read-out)."""
        self._lips_frames = 0
        self._speech = 0.0
        """The front-end's speech level of the previous read-out (a noise onset reads as speech for one frame)."""
        self.lips_newest: tuple[int, float] | None = None
        """``newest`` of the frame behind ``lips``: a frame is shown once its lips are read out, not before."""
        self._chunk_ms = 0.0
        if getattr(self, "readout", None) is not None:
            self.readout.reset()
        self.received = 0
        """Page index of the next sample expected."""
        self.pending = np.zeros(0, np.float32)
        """Received samples not yet in a complete frame (fewer than 640)."""
        self.frames = 0
        self.newest: tuple[int, float] | None = None
        """(frame number, page ms of its centre) of the newest mouth frame."""
        self.last_audio_at = -1e9
        self.page_lag_ms: float | None = None
        self.drawn_ms = -1.0
        """The page's ack: audio ms of the newest mouth it has drawn (``may_send``)."""
        self.sent: list[tuple[float, float]] = []
        """(audio ms, clock) of each mouth frame sent and not yet drawn by the page (oldest first, ``may_send``)."""
        self.sent_at = -1e9
        """Clock of the newest frame sent while live (with or without a mouth)."""
        self.refused = 0
        self._told_refused = False
        self._times: deque[float] = deque()
        self._audio_in: deque[tuple[float, int]] = deque()

    # ------------------------------------------------------------------ control (GUI)
    def start(self) -> None:
        with self.lock:
            self.active = True
            self._reset()
        self.command("start")
        self.status("microphone: starting…", None)

    def stop(self, tell_page: bool = True) -> None:
        with self.lock:
            was = self.active
            self.active = False
            self.pending = self.pending[:0]
        if tell_page:
            self.command("stop")
        if was:
            self.status("microphone: off", None)

    def close(self) -> None:
        with self.lock:
            self.active = False
            self._reset()

    # ------------------------------------------------------------------ messages (page)
    def receive(self, text: str) -> int:
        """A message from the page; returns the number of new mouth frames (0 when refused or not audio)."""
        if not isinstance(text, str) or not text:
            return 0
        if text == "s":
            self.stop(tell_page=False)
            return 0
        m = _ERROR.match(text)
        if m is not None:
            self._mic_failed(m.group(1))
            return 0
        now = self.clock()
        received = time.time() if self.trace is not None else 0.0
        with self.lock:
            if not self.active:
                return 0
            try:
                self._check_rate(now)
                n = self._take(decode_chunk(text, self.limits), now)
            except LiveRefused as err:
                self.refused += 1
                tell, self._told_refused = not self._told_refused, True
                if tell:
                    reason = str(err)
                n = None
            readout = self.readout
            newest, chunk_ms, frames_at = self.newest, self._chunk_ms, self.frames
        if n is None:
            if tell:
                self.notify(
                    "Live audio refused", f"the page sent {reason}; further refusals are not reported", "warning"
                )
            return 0
        if n and readout is not None:
            lips, speech = readout.mouth()  # ~20 ms: outside the lock, so the playback thread keeps its pace
            with self.lock:
                # two lanes' messages can be read out at once: the later audio wins
                if self.readout is readout and self.active and frames_at >= self._lips_frames:
                    # speech must hold for two read-outs to start the mouth (a noise onset reads as speech for one)
                    gain = speech_gain(speech if self._speech >= SPEECH_RANGE[0] else min(speech, self._speech))
                    self.lips, self._lips_frames, self._speech = lips * gain, frames_at, speech
                    self.lips_newest = newest
        if n:
            if self.trace is not None and newest is not None:
                self.trace.append((newest[1], chunk_ms, received, time.time()))
                del self.trace[:-5000]
            self.on_frame()
        return n

    def _mic_failed(self, name: str) -> None:
        with self.lock:
            self.active = False
        reasons = {
            "NotAllowedError": "the browser or the system denied access to the microphone: "
            "allow it for this page (the icon in the address bar) and press Talk live again",
            "NotFoundError": "no microphone was found: connect one and press Talk live again",
            "NotReadableError": "the microphone is in use by another program or failed to start",
            "NoMediaDevices": "this page cannot use a microphone here: open the viewer at http://127.0.0.1 or "
            "http://localhost (browsers allow microphones only on secure or local pages)",
        }
        self.notify("Microphone unavailable", reasons.get(name, f"the microphone could not start ({name})"), "error")
        self.status("microphone: unavailable", None)

    def _check_rate(self, now: float) -> None:
        times = self._times
        times.append(now)
        while times and now - times[0] > 1.0:
            times.popleft()
        if len(times) > self.limits.max_messages_per_second:
            raise LiveRefused(f"more than {self.limits.max_messages_per_second} messages a second")

    def _take(self, chunk: LiveChunk, now: float) -> int:
        if chunk.end <= self.received:
            return 0  # all of it arrived in an earlier message (the overlap)
        window = 2.0
        recent = sum(n for t, n in self._audio_in if now - t <= window)
        fresh = chunk.end - max(chunk.start, self.received)
        if recent + fresh > self.limits.max_audio_ratio * window * SAMPLE_RATE:
            raise LiveRefused("audio faster than real time")
        self._audio_in.append((now, fresh))
        while self._audio_in and now - self._audio_in[0][0] > window:
            self._audio_in.popleft()
        self._chunk_ms = chunk.page_ms
        audio = chunk.samples.astype(np.float32) / 32768.0
        if chunk.start > self.received:  # a message was lost: start the frames afresh at this one
            self.pending = self.pending[:0]
            self.received = chunk.start
        audio = audio[self.received - chunk.start :]
        self.received = chunk.end
        if self.readout is not None:
            self.readout.push(audio)
        keep = int(self.limits.buffer_seconds * SAMPLE_RATE)
        audio = np.concatenate([self.pending, audio])[-keep:]
        n = audio.shape[0] // SAMPLES_PER_FRAME
        if n:
            self.mouth.frames(audio[: n * SAMPLES_PER_FRAME])
            self.frames += n
            # centre of the newest complete frame, in page time
            after = audio.shape[0] - n * SAMPLES_PER_FRAME + SAMPLES_PER_FRAME / 2
            self.newest = (self.frames, chunk.page_ms - 1000.0 * after / SAMPLE_RATE)
            self.last_audio_at = now
        self.pending = audio[n * SAMPLES_PER_FRAME :].copy()
        if chunk.page_lag_ms is not None:
            self.page_lag_ms = chunk.page_lag_ms
        if chunk.drawn_ms is not None:
            self.drawn_ms = max(self.drawn_ms, chunk.drawn_ms)
        return n

    # ------------------------------------------------------------------ the session's playback thread
    def frame(self, now: float) -> tuple[tuple, np.ndarray, float | None] | None:
        """``(key, mouth row [D], page ms of the audio behind it)`` while live, else None.

        The key changes with each new mouth frame; it is None (and the row closed) while no audio comes in.
        """
        with self.lock:
            if not self.active:
                return None
            newest = self.newest if self.readout is None else self.lips_newest
            if newest is None:
                return None, np.zeros(self.motion_dim, np.float32), None
            number, page_ms = newest
            if now - self.last_audio_at > STALE_SECONDS:
                self.mouth.opening = 0.0
                return None, np.zeros(self.motion_dim, np.float32), None
            opening, voice, lips = self.mouth.opening, self.mouth.voice, self.lips
        if lips is not None:
            return ("live", number), voice * lips, page_ms
        return ("live", number), mouth_row(opening, self.motion_dim, self.open_channel), page_ms

    def may_send(self, now: float) -> bool:
        """Whether the session may send a frame now (pacing a page that draws slower than frames come).

        A mouth frame sent is *in flight* until the page acks drawing it (each message carries the audio ms of
        the newest mouth it drew) or :data:`ACK_TIMEOUT` seconds pass; frames sent much faster than the page
        draws would queue up on its main thread, and the microphone's messages behind them. With
        :data:`IN_FLIGHT` frames in flight: wait. While the audio is stale (the page fell behind), at most
        :data:`STALE_FPS` frames a second.
        """
        with self.lock:
            self.sent = [(ms, at) for ms, at in self.sent if self.drawn_ms + 0.05 < ms and now - at < ACK_TIMEOUT]
            if len(self.sent) >= IN_FLIGHT:
                return False
            if now - self.last_audio_at > STALE_SECONDS:
                return now - self.sent_at >= 1.0 / STALE_FPS
            return True

    def shown(self, page_ms: float | None) -> None:
        """The session sent the frame of ``frame()``: tell the page which audio it shows (the page measures and
        shows the lag itself, ``live_page.METER_ID``)."""
        now = self.clock()
        with self.lock:
            self.sent_at = now
            if page_ms is not None:
                self.sent.append((page_ms, now))
        if self.trace is not None and page_ms is not None:
            self.shown_trace.append((page_ms, time.time()))
            del self.shown_trace[:-5000]
        self.status("microphone: live", page_ms)

    @property
    def opening(self) -> float:
        return self.mouth.opening if self.active else 0.0
