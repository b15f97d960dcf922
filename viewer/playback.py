"""Play/pause/loop/seek over a clip, and which frame to show now.

The :class:`Player` holds the *intent* (playing or not, where, looping) and
decides the frame from a clock: the browser's audio clock when the page
reports it for this clip (so the motion follows what is heard), else the
server's wall clock (no page, audio still loading, or tests). It never shows a
frame the talk model has not produced yet: when playback catches up with
generation it stalls — audio paused — until a second of frames is ready.
Pure logic, no threads: the session's playback thread calls :meth:`tick`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from splattalk.talk.config import FPS
from splattalk.viewer.audio_sync import AudioClock, ClockReport
from splattalk.viewer.talking import Clip

PAGE_GRACE = 1.5
"""Seconds the playhead waits for a connected page to start the audio before it runs on the wall clock."""
LEAD_RANGE = (0.0, 0.8)
"""Bounds of the lead (s) by which frames run ahead of the audio clock to make up for delivery delay."""
LEAD_SAMPLES = 10
"""Display offsets (reports) per lead adjustment: a slow page's offsets sawtooth over its draw period."""
LEAD_SNAP = 0.04
"""A median display offset (s) beyond which the lead moves by all of it: the delay really changed (the page
slowed down, sped up, or the first estimate came from its start-up); smaller ones move it by half, to average
out the sawtooth."""
RESUME_FRAMES = FPS
"""Frames that must be ready ahead of the playhead before a stalled clip resumes."""


@dataclass(frozen=True)
class Desired:
    """The state the page's audio element must be in (see ``audio_sync.state_html``)."""

    seq: int
    clip: int
    playing: bool
    loop: bool
    seek_seq: int
    seek: float


class Player:
    def __init__(self, latency: float = 0.03):
        self.lead = latency
        """Seconds ahead of the audio clock the shown frame is taken: the delivery and render delay.
        Starts at ``latency`` and then follows what the page reports it displays (closed loop)."""
        self._offsets: deque[float] = deque(maxlen=LEAD_SAMPLES)
        self._adjustments = 0
        self.clip: Clip | None = None
        self.playing = False
        """The user's intent (stays True while stalled)."""
        self.stalled = False
        """Waiting for the talk model to produce frames."""
        self.started = False
        """Whether the clip has begun playing at least once (it starts itself when its first frames exist)."""
        self.ended = False
        """Played to the end (not looping): idle motion until played or scrubbed again."""
        self.loop = False
        self.clock = AudioClock()
        self.blocked = False
        """The page reported that the browser refused to start audio."""
        self._anchor_pos = 0.0
        self._anchor_time = 0.0
        self._seq = 0
        self._seek_seq = 0
        self._seek = 0.0

    # ------------------------------------------------------------------ commands
    def load(self, clip: Clip, now: float) -> None:
        self.clip = clip
        self.playing, self.stalled, self.started, self.blocked, self.ended = False, False, False, False, False
        self._set_position(0.0, now, seek=True)

    def unload(self, now: float) -> None:
        self.clip = None
        self.playing = self.stalled = False
        self._set_position(0.0, now, seek=True)

    def play(self, now: float) -> None:
        if self.clip is None or self.playing:
            return
        pos = self.position(now)
        if pos >= self.clip.duration - 1e-3:
            pos = 0.0
        self.playing, self.stalled, self.started, self.ended = True, False, True, False
        self._set_position(pos, now, seek=True)

    def pause(self, now: float) -> None:
        if self.clip is None or not self.playing:
            return
        pos = self.position(now)
        self.playing = self.stalled = False
        self._set_position(pos, now, seek=True)

    def seek(self, seconds: float, now: float) -> None:
        if self.clip is None:
            return
        self.ended = False
        self.started = True
        self._set_position(min(max(0.0, seconds), self.clip.duration), now, seek=True)

    def set_loop(self, loop: bool) -> None:
        self.loop = bool(loop)
        self._seq += 1

    # ------------------------------------------------------------------ the page's reports
    def report(self, report: ClockReport, now: float) -> None:
        """A clock report from the page; adopts what the user did with the audio element's own controls."""
        self.clock.update(report, now)
        clip = self.clip
        if clip is None or report.clip != clip.id or report.applied != self._seq:
            return  # stale, or our latest state is not applied yet: nothing to adopt
        self.blocked = report.blocked
        audible = self.playing and not self.stalled
        if audible and not report.paused and report.drawn_offset is not None:
            for _ in range(min(report.draws, LEAD_SAMPLES)):
                self._adapt_lead(report.drawn_offset)
        if report.ended and not self.loop and self.playing:
            self._end(now)
        elif audible and report.paused and not report.ended:
            self.playing = False  # paused in the page (or autoplay refused)
            self._set_position(report.time, now, seek=False)
        elif not self.playing and not report.paused:
            self.playing, self.started, self.ended = True, True, False  # played in the page
            self._set_position(report.time, now, seek=False)
        elif not self.playing and abs(report.time - self._anchor_pos) > 0.05:
            self._set_position(report.time, now, seek=False)  # scrubbed in the page

    # ------------------------------------------------------------------ queries
    def position(self, now: float) -> float:
        """Playhead (s).

        With a page reporting: its audio clock once it has applied our latest state
        (before that the playhead holds, for at most :data:`PAGE_GRACE` seconds —
        the audio is still loading or starting). Without one: the wall clock.
        """
        clip = self.clip
        if clip is None:
            return 0.0
        audible = self.playing and not self.stalled
        r = self.clock.fresh(now, clip.id)
        if r is not None and r.applied == self._seq and audible:
            pos = self.clock.position(now, clip.id)
        elif audible:
            waited = now - self._anchor_time
            if self.clock.connected(now):
                waited = max(0.0, waited - PAGE_GRACE)  # the page will catch up: hold, then give up on it
            pos = self._anchor_pos + waited
        else:
            pos = self._anchor_pos
        if self.loop and clip.duration > 0:
            return pos % clip.duration if pos >= clip.duration else pos
        return min(pos, clip.duration)

    def desired(self) -> Desired:
        clip_id = self.clip.id if self.clip is not None else 0
        return Desired(self._seq, clip_id, self.playing and not self.stalled, self.loop, self._seek_seq, self._seek)

    def frame_at(self, pos: float) -> int:
        assert self.clip is not None
        return min(max(0, math.floor((pos + self.lead) * FPS)), self.clip.num_frames - 1)

    def tick(self, now: float) -> int | None:
        """Advance the state machine; returns the clip frame to show, or None for idle motion."""
        clip = self.clip
        if clip is None:
            return None
        if not self.started and not self.playing:
            if clip.ready >= min(clip.num_frames, RESUME_FRAMES) or (clip.done and clip.ready > 0):
                self.play(now)  # starts as soon as the first window exists
            elif clip.done:
                return None  # generation failed: nothing to show
            else:
                return 0 if clip.ready > 0 else None
        pos = self.position(now)
        if self.playing and not self.loop and pos >= clip.duration - 1e-6 and self.clock.fresh(now, clip.id) is None:
            self._end(now)  # by the wall clock; a page reports its own end
        if self.ended:
            return None
        frame = self.frame_at(pos)
        if self.playing and not self.stalled and frame >= clip.ready and not clip.done:
            self.stalled = True
            self._set_position(pos, now, seek=True)
        elif self.stalled and (clip.ready >= min(clip.num_frames, frame + RESUME_FRAMES) or clip.done):
            self.stalled = False
            self._set_position(pos, now, seek=True)
        return min(frame, max(clip.ready - 1, 0)) if clip.ready > 0 else None

    # ------------------------------------------------------------------ internals
    def _adapt_lead(self, offset: float) -> None:
        """One displayed-frame offset (frame centre − audio time, s) from the page; every
        :data:`LEAD_SAMPLES` of them move the lead against their median — fully the first time and
        whenever it exceeds :data:`LEAD_SNAP`, by half otherwise (a loop wrap's jump is ignored)."""
        if abs(offset) > 1.5:
            return
        self._offsets.append(offset)
        if len(self._offsets) == LEAD_SAMPLES:
            offset = float(np.median(self._offsets))
            gain = 1.0 if self._adjustments == 0 or abs(offset) > LEAD_SNAP else 0.5
            self.lead = float(np.clip(self.lead - gain * offset, *LEAD_RANGE))
            self._adjustments += 1
            self._offsets.clear()

    def _end(self, now: float) -> None:
        self.playing = self.stalled = False
        self.ended = True
        self._set_position(0.0, now, seek=True)

    def _set_position(self, pos: float, now: float, seek: bool) -> None:
        self._anchor_pos, self._anchor_time = pos, now
        self._seq += 1
        if seek:
            self._seek_seq += 1
            self._seek = pos
