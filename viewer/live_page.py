"""Talk live, page side: the microphone controller that runs in viser's page, and its viser controls.

Installed like the audio controller (``audio_sync.py``: an ``<img onerror=…>`` inserted with
``gui.add_html``). ``window.__splattalkLive`` captures the microphone (``getUserMedia``, echo
cancellation, noise suppression and gain control off: the mouth follows the voice as it is) with a
``ScriptProcessorNode`` (by default: measured faster to reach the main thread than an AudioWorklet's messages
on a slow page, docs/live.md) or, with ``window.__splattalkLive.useWorklet``, an **AudioWorklet** (its module
from a ``blob:`` URL made in the page). Either box-filters
and decimates to 16 kHz int16 and hands over every 640 samples (one talk-model frame, 40 ms, aligned with the
server's frames), dated by the audio clock. The main thread writes each chunk as a message (``live_audio.py``'s
format: the new samples and the previous message's, and the audio ms of the newest mouth drawn, by which the
server paces its frames) into one of :data:`LIVE_LABELS`' hidden inputs, in turn (``page_transport.py``: viser
throttles each panel to one message per 50 ms; two lanes carry one message per 40 ms without waiting).

At each drawn page frame it looks at the status element's ``data-audio-ms`` (page time of the audio behind the
mouth the server last sent): when it changes, now minus that is one mic→mouth lag. The page's own readout
(:data:`METER_ID`, written by the page, never by the server) shows the median lag of the last 3 s, the mouth updates
of the last second and the frames per second the page draws; ``history`` keeps ``[page ms, lag, data-audio-ms]`` and
``sent`` ``[capture ms, send ms]`` for the browser test and ``scripts/bench_live.py``.
"""

from __future__ import annotations

import html

from splattalk.viewer.audio_sync import _handler
from splattalk.viewer.live_audio import LIVE_LABELS
from splattalk.viewer.page_transport import LANE_GAP_MS, TRANSPORT_JS, add_hidden_inputs

STATUS_ID = "splattalk-live"
METER_ID = "splattalk-live-meter"
CHUNK_SAMPLES = 640
"""16-kHz samples per message: one 40-ms talk-model frame (the server's frames start at the page's sample 0)."""
MAX_SEND_SAMPLES = 4000
"""Newest samples a message carries besides the previous message's (0.25 s; older ones are dropped: the mouth
only needs the newest, and a message stays under ``LiveLimits.max_message_chars``)."""
METER_MS = 500
"""How often the page rewrites its lag/fps readout."""

WORKLET_JS = """
class SplattalkMic extends AudioWorkletProcessor {
  constructor(o) {
    super(); this.chunk = o.processorOptions.chunk; this.ratio = sampleRate / 16000;
    this.acc = 0; this.n = 0; this.t = 0; this.next = this.ratio; this.k = 0; this.buf = new Int16Array(this.chunk);
    this.on = true; this.port.onmessage = (e) => { if (e.data === 'stop') this.on = false; };
  }
  process(inputs) {
    const x = inputs[0] && inputs[0][0];
    if (!x) return this.on;
    for (let i = 0; i < x.length; i++) {
      this.acc += x[i]; this.n += 1; this.t += 1;
      if (this.t >= this.next) {
        this.buf[this.k++] = Math.max(-32768, Math.min(32767, Math.round(32767 * this.acc / this.n)));
        this.acc = 0; this.n = 0; this.next += this.ratio;
        if (this.k === this.chunk) {
          this.port.postMessage({s: this.buf, t: currentTime + (i + 1) / sampleRate}, [this.buf.buffer]);
          this.buf = new Int16Array(this.chunk); this.k = 0;
        }
      }
    }
    return this.on;
  }
}
registerProcessor('splattalk-mic', SplattalkMic);
"""

LIVE_JS = """
var L = window.__splattalkLive || (window.__splattalkLive = {on: false, seq: 0, cmd: -1, lags: [], history: [],
  sent: [], draws: []});
L.labels = %(labels)s; L.statusId = '%(status_id)s'; L.meterId = '%(meter_id)s'; L.chunk = %(chunk)d;
L.lanes = L.lanes || window.__splattalkTransport.lanes(L.labels, %(gap)d);
L.send = function(text) { return L.lanes.send(text); };
L.sendNow = function(text) {  // a control message: through the first free lane, as soon as one is free
  if (!L.send(text)) setTimeout(function() { L.sendNow(text); }, L.lanes.wait() + 1);
};
L.lag = function() {
  if (!L.lags.length) return -1;
  var s = L.lags.map(function(p) { return p[1]; }).sort(function(a, b) { return a - b; });
  return Math.round(s[s.length >> 1]);
};
L.toPage = function(t) {  // audio-clock seconds -> page ms (the graph's now is ctx.currentTime)
  return performance.now() - 1000 * Math.max(0, L.ctx.currentTime - t);
};
L.push = function(samples, captured) {  // 16-kHz int16 samples whose last was captured at page ms `captured`
  if (!L.on) return;
  L.buf.push(samples); L.n += samples.length; L.captured = captured; L.flush();
};
L.flush = function() {  // one message with all that is pending; all lanes busy: again when one is free
  if (!L.on || !L.n || L.timer) return;
  var wait = L.lanes.wait();
  if (wait > 0) { L.timer = setTimeout(function() { L.timer = null; L.flush(); }, wait + 1); return; }
  var cur = new Int16Array(L.n), o = 0;
  L.buf.forEach(function(b) { cur.set(b, o); o += b.length; });
  L.total += L.n; L.buf = []; L.n = 0;
  if (cur.length > %(most)d) { cur = cur.slice(-%(most)d); L.prev = new Int16Array(0); }  // not contiguous
  var both = new Int16Array(L.prev.length + cur.length); both.set(L.prev); both.set(cur, L.prev.length);
  var start = L.total - both.length, ms = L.captured.toFixed(1); L.prev = cur;
  L.send(['a', L.seq++, start, ms, L.lag(), L.seen || -1, window.__splattalkTransport.b64(both)].join(' '));
  L.sent.push([parseFloat(ms), performance.now()]); if (L.sent.length > 5000) L.sent.shift();
};
L.worklet = function(ctx, src) {
  // window.URL: in an inline handler, a bare URL is document.URL
  var url = window.URL.createObjectURL(new Blob([%(worklet)s], {type: 'application/javascript'}));
  return ctx.audioWorklet.addModule(url).then(function() {
    window.URL.revokeObjectURL(url);
    var node = new AudioWorkletNode(ctx, 'splattalk-mic', {numberOfInputs: 1, numberOfOutputs: 1,
      channelCount: 1, channelCountMode: 'explicit', processorOptions: {chunk: L.chunk}});
    node.port.onmessage = function(e) { L.push(e.data.s, L.toPage(e.data.t)); };
    src.connect(node); node.connect(ctx.destination);  // silent output: keeps the node pulled
    return node;
  });
};
L.script = function(ctx, src) {  // fallback: a ScriptProcessorNode on the main thread
  var proc = ctx.createScriptProcessor(1024, 1, 1), ratio = ctx.sampleRate / 16000;
  var acc = 0, n = 0, t = 0, next = ratio, out = [];
  proc.onaudioprocess = function(e) {
    var x = e.inputBuffer.getChannelData(0);
    for (var i = 0; i < x.length; i++) {
      acc += x[i]; n += 1; t += 1;
      if (t >= next) { out.push(Math.max(-32768, Math.min(32767, Math.round(32767 * acc / n)))); acc = 0; n = 0;
        next += ratio; }
    }
    var end = e.playbackTime - x.length / ctx.sampleRate;  // its last sample reached the graph then
    while (out.length >= L.chunk) L.push(Int16Array.from(out.splice(0, L.chunk)), L.toPage(end));
  };
  src.connect(proc); proc.connect(ctx.destination);
  proc.port = {postMessage: function() { proc.onaudioprocess = null; }};
  return Promise.resolve(proc);
};
L.start = function() {
  if (L.on) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { L.sendNow('e NoMediaDevices'); return; }
  L.on = true;
  navigator.mediaDevices.getUserMedia({audio: {
      channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false}})
    .then(function(stream) {
      if (!L.on) { stream.getTracks().forEach(function(t) { t.stop(); }); return; }
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var src = ctx.createMediaStreamSource(stream);
      L.buf = []; L.n = 0; L.prev = new Int16Array(0); L.total = 0; L.lags = []; L.stream = stream; L.ctx = ctx;
      // measured (scripts/bench_live.py, headless Chromium): the worklet's chunks reached the main thread ~290 ms
      // later than a ScriptProcessorNode's callbacks on a page drawing 4 fps: the main-thread capture is the default
      L.mode = (L.useWorklet && ctx.audioWorklet && window.AudioWorkletNode) ? 'worklet' : 'script';
      stream.getTracks().forEach(function(t) { t.onended = function() { L.stop(); }; });
      var made = L.mode === 'worklet' ? L.worklet(ctx, src).catch(function(err) {
        if (window.console) console.warn('splattalk: no AudioWorklet, capturing on the main thread', err);
        L.mode = 'script'; return L.script(ctx, src);
      }) : L.script(ctx, src);
      return made.then(function(node) {
        if (L.ctx !== ctx) { node.port.postMessage('stop'); return; }
        L.node = node; ctx.resume();
      });
    })
    .catch(function(err) {
      if (window.console) console.warn('splattalk: the microphone did not start', err);
      var was = L.on; L.stop(true);
      if (was) L.sendNow('e ' + ((err && err.name) || 'Error').replace(/[^A-Za-z]/g, ''));
    });
};
L.stop = function(quiet) {
  var was = L.on; L.on = false;
  if (L.timer) { clearTimeout(L.timer); L.timer = null; }
  if (L.stream) L.stream.getTracks().forEach(function(t) { t.stop(); });
  if (L.node) L.node.port.postMessage('stop');
  if (L.ctx) L.ctx.close();
  L.stream = L.ctx = L.node = null;
  if (was && !quiet) L.sendNow('s');
};
L.command = function(seq, action) {
  if (seq <= L.cmd) return; L.cmd = seq;
  if (action === 'start') L.start(); else if (action === 'stop') L.stop();
};
L.meter = function(now) {
  var el = document.getElementById(L.meterId); if (!el) return;
  while (L.draws.length && now - L.draws[0] > 1000) L.draws.shift();
  // the lag over the last 3 s (a slow page updates the mouth less than once a second), updates over the last 1 s
  while (L.lags.length && now - L.lags[0][0] > 3000) L.lags.shift();
  var updates = L.lags.filter(function(p) { return now - p[0] <= 1000; }).length;
  var fps = L.draws.length > 1 ? 1000 * (L.draws.length - 1) / (L.draws[L.draws.length - 1] - L.draws[0]) : 0;
  var text = 'page ' + fps.toFixed(0) + ' fps';
  if (L.on) text = 'mouth lag ' + (L.lags.length ? L.lag() + ' ms' : '–') + ' · ' + updates
    + ' mouth updates/s · ' + text;
  el.textContent = text; el.dataset.lagMs = L.lag(); el.dataset.fps = fps.toFixed(1);
};
L.draw = function() {
  var now = performance.now();
  L.lanes.find();  // finds and hides the inputs' panels as soon as they exist
  L.draws.push(now);
  var el = document.getElementById(L.statusId);
  if (el && L.on) {
    var ms = el.dataset.audioMs;
    if (ms && ms !== L.seen) {
      var lag = now - parseFloat(ms); L.seen = ms;
      L.lags.push([now, lag]);
      L.history.push([now, lag, ms]); if (L.history.length > 5000) L.history.shift();
    }
  }
  if (!L.meterAt || now - L.meterAt > %(meter_ms)d) { L.meterAt = now; L.meter(now); }
  requestAnimationFrame(L.draw);
};
if (!L.installed) { L.installed = true; requestAnimationFrame(L.draw); }
"""


def live_js() -> str:
    import json

    return TRANSPORT_JS + LIVE_JS % {
        "labels": json.dumps(list(LIVE_LABELS)),
        "status_id": STATUS_ID,
        "meter_id": METER_ID,
        "chunk": CHUNK_SAMPLES,
        "gap": LANE_GAP_MS,
        "most": MAX_SEND_SAMPLES,
        "meter_ms": METER_MS,
        "worklet": json.dumps(WORKLET_JS),
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


METER_HTML = (
    f'<div id="{METER_ID}" style="font-family:monospace;font-size:0.8em;margin:0 0.75em 0.5em;opacity:0.8"></div>'
)
"""The page's own readout (mouth lag, mouth updates and frames drawn per second): written by the page only."""


class LiveControls:
    """The "Talk live" and "Stop" buttons, the status line, the page's readout, and the hidden inputs."""

    def __init__(self, gui):
        self.gui = gui
        self.talk = gui.add_button(
            "Talk live", icon="microphone", hint="speak into the microphone: the avatar's mouth follows"
        )
        self.stop = gui.add_button("Stop talking", icon="microphone-off")
        self.status_el = gui.add_html(status_html("microphone: off", None))
        self.meter_el = gui.add_html(METER_HTML)
        self.command_el = gui.add_html(command_html(0, ""))
        self._seq = 0
        self._status = ""

    def add_input_panel(self) -> None:
        """The hidden inputs the page's messages come through (``page_transport.add_hidden_inputs``)."""
        self.inputs = add_hidden_inputs(self.gui, LIVE_LABELS)

    def on_message(self, callback) -> None:
        """``callback(event)`` for each message the page writes, whichever lane it came through."""
        for handle in self.inputs:
            handle.on_update(callback)

    def command(self, action: str) -> None:
        self._seq += 1
        self.command_el.content = command_html(self._seq, action)

    def status(self, text: str, audio_ms: float | None) -> None:
        content = status_html(text, audio_ms)
        if content != self._status:
            self._status = content
            self.status_el.content = content
