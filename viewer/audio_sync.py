"""Sound in the browser, in sync with the motion: viser has no audio widget, so we build one.

The scheme (see ``docs/viewer.md``):

* **Audio element.** Each clip is encoded to Opus in a WebM container (PyAV's
  libopus, ~2 KB/s) and put into the page as an ``<audio>`` element with a
  ``data:`` URL through ``gui.add_html``. viser inserts that HTML with React's
  ``dangerouslySetInnerHTML``: ``<script>`` does not run, inline event handlers
  do, so an ``<img src="x:" onerror=…>`` installs our small controller
  (:data:`BOOTSTRAP_JS`) once per page.
* **Server → browser: desired state.** A second HTML element carries the state
  the audio element must be in — clip, playing or paused, loop, and a seek
  target with its own sequence number — again run through an ``onerror``
  handler. It is a *state*, not an event, so viser coalescing two quick updates
  into one loses nothing.
* **Browser → server: the audio clock.** Every 50 ms the controller writes
  ``clip seq currentTime paused ended performance.now() blocked readyState drawn-offset:draws``
  into a hidden viser text input (native value setter + an ``input`` event, so
  React's ``onChange`` sends it). That input sits alone in a floating viser
  panel that the controller hides: viser throttles the messages of each panel
  to one per 50 ms keeping only the newest, so next to the controls a report
  could swallow a control's last update.
* **Clock.** :class:`AudioClock` maps browser time to server time with the
  smallest observed (arrival − send) difference — the least-delayed report —
  and extrapolates the audio position to "now"; the player then sends the frame
  for now + a lead. The page also measures, at each frame it draws, how far the
  shown frame is from the audio, and reports it: the lead follows that (closed
  loop), so what is on screen matches what is heard whatever the delivery delay.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

REPORT_INTERVAL_MS = 50
"""How often the page reports its audio clock."""
STALE_SECONDS = 3.0
"""A clock with no report for this long is not trusted (the page is gone or hidden)."""
OFFSET_WINDOW = 200
"""Reports over which the minimum arrival delay is taken (~10 s)."""
AUDIO_ID = "splattalk-audio"
READOUT_ID = "splattalk-readout"
"""The frame readout (``data-frame``: the clip frame the page shows now, -1 when idle)."""
CLOCK_LABEL = "audio clock"
"""Label of the hidden text input the page writes its reports into."""


# ----------------------------------------------------------------------------- encoding


def encode_webm_opus(audio: np.ndarray, sample_rate: int = 16000, bitrate: int = 32000) -> bytes:
    """Mono float audio ``[S]`` → a WebM/Opus file in memory (complexity 0: ~300× real time)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm") as container:
        stream = container.add_stream("libopus", rate=sample_rate)
        stream.layout = "mono"
        stream.bit_rate = bitrate
        stream.options = {"compression_level": "0", "application": "audio"}
        samples = np.ascontiguousarray(np.clip(audio, -1, 1), dtype=np.float32)
        step = sample_rate  # one second a frame; the encoder cuts 20 ms packets itself
        for start in range(0, max(len(samples), 1), step):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + step], format="flt", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.time_base = Fraction(1, sample_rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def audio_data_url(audio: np.ndarray, sample_rate: int = 16000) -> str:
    return "data:audio/webm;codecs=opus;base64," + base64.b64encode(encode_webm_opus(audio, sample_rate)).decode(
        "ascii"
    )


# ----------------------------------------------------------------------------- page side

# Runs in the page (installed from an inline onerror handler; no <script> tags run).
# `S` is the per-page controller; re-running this code only refreshes its settings.
BOOTSTRAP_JS = """
var S = window.__splattalk || (window.__splattalk = {applied: -1, seekSeq: -1, blocked: 0});
S.clockLabel = '%(label)s'; S.audioId = '%(audio_id)s'; S.readoutId = '%(readout_id)s';
S.audio = function() { return document.getElementById(S.audioId); };
S.clockInput = function() {
  if (S.input && S.input.isConnected) return S.input;
  var label = null, labels = document.querySelectorAll('label');
  for (var i = 0; i < labels.length; i++) if (labels[i].textContent === S.clockLabel) { label = labels[i]; break; }
  if (!label) return null;
  var box = label; while (box && !box.querySelector('input')) box = box.parentElement;
  if (!box) return null;
  var panel = box.closest('.mantine-Paper-root') || box.parentElement;
  if (panel && panel.style.visibility !== 'hidden') panel.style.visibility = 'hidden';
  S.input = box.querySelector('input'); return S.input;
};
S.apply = function(st) {
  S.state = st; var a = S.audio();
  if (!a || String(a.dataset.clip) !== String(st.clip)) return;
  a.loop = !!st.loop;
  if (st.seekSeq !== S.seekSeq) { S.seekSeq = st.seekSeq; try { a.currentTime = st.seek; } catch (e) {} }
  if (st.playing && a.paused && !a.ended) {
    var p = a.play(); if (p && p.catch) p.then(function() { S.blocked = 0; }).catch(function() { S.blocked = 1; });
  } else if (st.playing && a.ended && st.loop) { a.currentTime = 0; a.play(); }
  else if (!st.playing && !a.paused) { a.pause(); }
  S.applied = st.seq;
};
S.report = function() {
  var input = S.clockInput(); if (!input) return;
  var a = S.audio(); var st = S.state || {seq: -1};
  var drawn = S.drawN ? Math.round(S.drawSum / S.drawN) + ':' + Math.min(S.drawN, 99) : 'x'; S.drawSum = 0; S.drawN = 0;
  var text = a ? [a.dataset.clip, S.applied, a.currentTime.toFixed(4), a.paused ? 1 : 0, a.ended ? 1 : 0,
                  performance.now().toFixed(1), S.blocked, a.readyState, drawn].join(' ')
               : ['0', S.applied, '0', 1, 0, performance.now().toFixed(1), 0, 0, 'x'].join(' ');
  if (input.value === text) return;
  var setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  setter.call(input, text); input.dispatchEvent(new Event('input', {bubbles: true}));
};
S.draw = function() {  // at each drawn page frame: shown clip frame's centre minus the audio position, ms
  var a = S.audio(), r = document.getElementById(S.readoutId);
  if (a && r && !a.paused && a.readyState >= 3 && String(a.dataset.clip) === String(S.state && S.state.clip)) {
    var f = parseInt(r.dataset.frame, 10);
    if (f >= 0) { S.drawSum = (S.drawSum || 0) + 1000 * ((f + 0.5) / 25 - a.currentTime); \
S.drawN = (S.drawN || 0) + 1; }
  }
  requestAnimationFrame(S.draw);
};
if (!S.installed) {
  S.installed = true;
  requestAnimationFrame(S.draw);
  setInterval(function() { try { if (S.state) S.apply(S.state); S.report(); } catch (e) {} }, %(interval)d);
}
"""


def _handler(js: str) -> str:
    """An element whose ``onerror`` runs ``js`` when React inserts it."""
    return f'<img src="x:" alt="" style="display:none" onerror="{html.escape(js, quote=True)}">'


def bootstrap_js(clock_label: str = CLOCK_LABEL) -> str:
    return BOOTSTRAP_JS % {
        "label": clock_label,
        "audio_id": AUDIO_ID,
        "readout_id": READOUT_ID,
        "interval": REPORT_INTERVAL_MS,
    }


def player_html(clip_id: int, data_url: str | None, label: str, clock_label: str = CLOCK_LABEL) -> str:
    """The audio element of one clip (or none yet) plus the controller's installer."""
    body = ""
    if data_url is not None:
        body = (
            f'<div style="font-size:0.8em;opacity:0.7;margin:0 0.6em">{html.escape(label)}</div>'
            f'<audio id="{AUDIO_ID}" data-clip="{int(clip_id)}" preload="auto" controls '
            f'style="width:100%;height:2em" src="{data_url}"></audio>'
        )
    return body + _handler(bootstrap_js(clock_label))


def state_html(seq: int, clip_id: int, playing: bool, loop: bool, seek_seq: int, seek: float) -> str:
    """The desired audio state as a one-shot handler (applied again by the controller every tick)."""
    state = (
        f"{{seq:{int(seq)},clip:{int(clip_id)},playing:{str(bool(playing)).lower()},loop:{str(bool(loop)).lower()},"
        f"seekSeq:{int(seek_seq)},seek:{float(seek):.4f}}}"
    )
    return _handler(f"window.__splattalk && window.__splattalk.apply({state})")


# ----------------------------------------------------------------------------- server side

_REPORT = re.compile(
    r"^(-?\d{1,9}) (-?\d{1,9}) (\d{1,7}(?:\.\d+)?) ([01]) ([01]) (\d{1,12}(?:\.\d+)?) "
    r"([01]) (\d) (?:(-?\d{1,7}):(\d{1,2})|x)$"
)


@dataclass(frozen=True)
class ClockReport:
    """One report of the page's audio element."""

    clip: int
    """Clip id of the audio element that reported."""
    applied: int
    """Sequence number of the last desired state the page applied."""
    time: float
    """``currentTime`` in seconds."""
    paused: bool
    ended: bool
    page_ms: float
    """``performance.now()`` when it was read (page clock, milliseconds)."""
    blocked: bool
    """The browser refused ``play()`` (autoplay policy: the user must click play)."""
    ready_state: int
    drawn_offset: float | None = None
    """Mean over the page's draws since the previous report of: shown frame's centre time minus the
    audio position (s); None when it drew no clip frame while playing."""
    draws: int = 0
    """How many draws that mean is over."""


def parse_report(text: str) -> ClockReport | None:
    """A report from the page, or None for anything malformed (it comes from the client: never trusted)."""
    if not isinstance(text, str) or len(text) > 120:
        return None
    m = _REPORT.match(text.strip())
    if m is None:
        return None
    clip, applied, t, paused, ended, page_ms, blocked, ready, drawn, draws = m.groups()
    offset = None if drawn is None else int(drawn) / 1000.0
    return ClockReport(
        int(clip),
        int(applied),
        float(t),
        paused == "1",
        ended == "1",
        float(page_ms),
        blocked == "1",
        int(ready),
        offset,
        int(draws or 0),
    )


class AudioClock:
    """The page's audio position, extrapolated to the server's clock (``time.monotonic`` seconds)."""

    def __init__(self):
        self.latest: ClockReport | None = None
        self.received = 0.0
        self._delays: deque[float] = deque(maxlen=OFFSET_WINDOW)

    def reset(self) -> None:
        self.__init__()

    def update(self, report: ClockReport, now: float) -> None:
        self._delays.append(now - report.page_ms / 1000.0)
        self.latest = report
        self.received = now

    @property
    def offset(self) -> float | None:
        """Server time minus page time, from the least-delayed report (None before the first)."""
        return min(self._delays) if self._delays else None

    def connected(self, now: float) -> bool:
        """Whether a page is reporting at all (about any clip)."""
        return self.latest is not None and now - self.received <= STALE_SECONDS

    def fresh(self, now: float, clip: int) -> ClockReport | None:
        """The latest report if it is recent and about ``clip``."""
        r = self.latest
        if r is None or r.clip != clip or now - self.received > STALE_SECONDS:
            return None
        return r

    def position(self, now: float, clip: int) -> float | None:
        """Audio position (s) of ``clip`` at server time ``now``, or None when the page does not report it."""
        r = self.fresh(now, clip)
        if r is None:
            return None
        if r.paused or r.ended or r.ready_state < 3:
            return r.time  # not advancing (or still loading: HAVE_FUTURE_DATA = 3)
        read_at = r.page_ms / 1000.0 + self.offset
        return r.time + max(0.0, now - read_at)
