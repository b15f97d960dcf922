"""Talk live, page side: the microphone controller that runs in viser's page, and its viser controls.

Installed like the audio controller (``audio_sync.py``: an ``<img onerror=…>`` inserted with
``gui.add_html``). ``window.__splattalkLive`` captures the microphone (``getUserMedia``, echo
cancellation, noise suppression and gain control off: the mouth follows the voice as it is), runs it
through a ``ScriptProcessorNode`` (an AudioWorklet needs a module URL; this needs nothing), box-filters and
decimates it to 16 kHz int16, and every 1024 samples (64 ms; at least 55 ms apart) writes a message
(``live_audio.py``'s format: the new samples and the previous message's) into the hidden "live audio" input.
At each drawn page frame it looks at the status element's
``data-audio-ms`` (page time of the audio behind the mouth the server last sent): when it changes, now
minus that is one mic→mouth lag; the median of the last ones goes back with the next message (and
``history`` keeps ``[page ms, lag]`` pairs for the browser test and ``scripts/bench_live.py``).
"""

from __future__ import annotations

import html

from splattalk.viewer.audio_sync import _handler
from splattalk.viewer.live_audio import LIVE_LABEL
from splattalk.viewer.page_input import INPUT_JS

STATUS_ID = "splattalk-live"
CHUNK_SAMPLES = 1024
"""16-kHz samples per message (64 ms; viser sends a panel's value at most every 50 ms)."""
SEND_GAP_MS = 55
"""Least time between two messages: a page whose callbacks come in bursts (a busy main thread) sends one
message with all it holds instead of several that viser's throttle would overwrite."""
MAX_SEND_SAMPLES = 4000
"""Newest samples a message carries besides the previous message's (0.25 s; older ones are dropped: the mouth
only needs the newest, and a message stays under ``LiveLimits.max_message_chars``)."""

LIVE_JS = """
var L = window.__splattalkLive || (window.__splattalkLive = {on: false, seq: 0, cmd: -1, lags: [], history: []});
L.label = '%(label)s'; L.statusId = '%(status_id)s'; L.chunk = %(chunk)d;
L.input = function() { L.el = window.__splattalkInput.find(L.label); return L.el; };  // page_input.py
L.send = function(text) { window.__splattalkInput.send(L.label, text); };
L.b64 = function(i16) {
  var u8 = new Uint8Array(i16.buffer, i16.byteOffset, i16.byteLength), s = '';
  for (var i = 0; i < u8.length; i += 4096) s += String.fromCharCode.apply(null, u8.subarray(i, i + 4096));
  return btoa(s);
};
L.lag = function() {
  if (!L.lags.length) return -1;
  var s = L.lags.slice().sort(function(a, b) { return a - b; }); return Math.round(s[s.length >> 1]);
};
L.process = function(e) {
  var x = e.inputBuffer.getChannelData(0);
  // This runs on the page's main thread, which can be late: date the samples by the audio clock (the buffer's
  // last sample reached the graph at playbackTime − its duration), not by when the callback ran.
  var late = Math.max(0, L.ctx ? L.ctx.currentTime - (e.playbackTime - x.length / L.ctx.sampleRate) : 0);
  var now = performance.now() - 1000 * late;
  for (var i = 0; i < x.length; i++) {  // box filter + decimation to 16 kHz, any input rate
    L.acc += x[i]; L.n += 1; L.t += 1;
    if (L.t >= L.next) {
      L.buf.push(Math.max(-32768, Math.min(32767, Math.round(32767 * L.acc / L.n))));
      L.acc = 0; L.n = 0; L.next += L.ratio;
    }
  }
  L.captured = now;
  if (L.buf.length >= L.chunk) L.flush();
};
L.flush = function() {  // at most one message per GAP ms (viser would overwrite the older one),
  // so a late page sends all it holds
  if (!L.on || !L.buf.length) return;
  var wait = L.sentAt + %(gap)d - performance.now();
  if (wait > 0) { if (!L.timer) L.timer = setTimeout(function() { L.timer = null; L.flush(); }, wait); return; }
  var cut = L.buf.length > %(most)d;
  if (cut) L.prev = new Int16Array(0);  // not contiguous with the previous message any more
  var cur = Int16Array.from(cut ? L.buf.slice(-%(most)d) : L.buf); L.total += L.buf.length; L.buf = [];
  var both = new Int16Array(L.prev.length + cur.length); both.set(L.prev); both.set(cur, L.prev.length);
  var start = L.total - both.length; L.prev = cur; L.sentAt = performance.now();
  L.send(['a', L.seq++, start, L.captured.toFixed(1), L.lag(), L.b64(both)].join(' '));
};
L.start = function() {
  if (L.on) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { L.send('e NoMediaDevices'); return; }
  L.on = true;
  navigator.mediaDevices.getUserMedia({audio: {
      channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false}})
    .then(function(stream) {
      if (!L.on) { stream.getTracks().forEach(function(t) { t.stop(); }); return; }
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var src = ctx.createMediaStreamSource(stream), proc = ctx.createScriptProcessor(1024, 1, 1);
      L.ratio = ctx.sampleRate / 16000; L.acc = 0; L.n = 0; L.t = 0; L.next = L.ratio; L.buf = [];
      L.prev = new Int16Array(0); L.total = 0; L.lags = []; L.sentAt = -1e9;
      L.stream = stream; L.ctx = ctx; L.proc = proc;
      proc.onaudioprocess = L.process; src.connect(proc); proc.connect(ctx.destination); ctx.resume();
      stream.getTracks().forEach(function(t) { t.onended = function() { L.stop(); }; });
    })
    .catch(function(err) { L.on = false; L.send('e ' + ((err && err.name) || 'Error').replace(/[^A-Za-z]/g, '')); });
};
L.stop = function() {
  var was = L.on; L.on = false;
  if (L.stream) L.stream.getTracks().forEach(function(t) { t.stop(); });
  if (L.proc) L.proc.onaudioprocess = null;
  if (L.ctx) L.ctx.close();
  L.stream = L.ctx = L.proc = null;
  if (was) L.send('s');
};
L.command = function(seq, action) {
  if (seq <= L.cmd) return; L.cmd = seq;
  if (action === 'start') L.start(); else if (action === 'stop') L.stop();
};
L.draw = function() {
  if (!L.el || !L.el.isConnected) L.input();  // finds and hides the input's panel as soon as it exists
  var el = document.getElementById(L.statusId);
  if (el && L.on) {
    var ms = el.dataset.audioMs;
    if (ms && ms !== L.seen) {
      var lag = performance.now() - parseFloat(ms); L.seen = ms;
      L.lags.push(lag); if (L.lags.length > 25) L.lags.shift();
      L.history.push([performance.now(), lag]); if (L.history.length > 5000) L.history.shift();
    }
  }
  requestAnimationFrame(L.draw);
};
if (!L.installed) { L.installed = true; requestAnimationFrame(L.draw); }
"""


def live_js() -> str:
    return INPUT_JS + LIVE_JS % {
        "label": LIVE_LABEL,
        "status_id": STATUS_ID,
        "chunk": CHUNK_SAMPLES,
        "gap": SEND_GAP_MS,
        "most": MAX_SEND_SAMPLES,
    }


def command_html(seq: int, action: str) -> str:
    """Install the controller (idempotent) and ask it to ``start``/``stop`` (``seq`` makes each request new)."""
    call = f"window.__splattalkLive.command({int(seq)}, {action!r})" if action in ("start", "stop") else ""
    return _handler(live_js() + call)


def status_html(text: str, audio_ms: float | None) -> str:
    ms = "" if audio_ms is None else f' data-audio-ms="{audio_ms:.1f}"'
    return (
        f'<div id="{STATUS_ID}"{ms} style="font-family:monospace;font-size:0.8em;margin:0 0.75em 0.5em">'
        f"{html.escape(text)}</div>"
    )


class LiveControls:
    """The "Talk live" and "Stop" buttons, the status line, and the hidden input in its own panel."""

    def __init__(self, gui):
        self.gui = gui
        self.talk = gui.add_button(
            "Talk live", icon="microphone", hint="speak into the microphone: the avatar's mouth follows"
        )
        self.stop = gui.add_button("Stop talking", icon="microphone-off")
        self.status_el = gui.add_html(status_html("microphone: off", None))
        self.command_el = gui.add_html(command_html(0, ""))
        self._seq = 0
        self._status = ""

    def add_input_panel(self) -> None:
        """Its own floating panel (outside any folder): viser throttles each panel's messages separately."""
        self.panel = self.gui.add_panel()
        with self.panel.add_tab("live"):
            self.input = self.gui.add_text(LIVE_LABEL, initial_value="")
        self.panel.float()

    def command(self, action: str) -> None:
        self._seq += 1
        self.command_el.content = command_html(self._seq, action)

    def status(self, text: str, audio_ms: float | None) -> None:
        content = status_html(text, audio_ms)
        if content != self._status:
            self._status = content
            self.status_el.content = content
