"""Mirror me, page side: the webcam controller that runs in viser's page, and its viser controls.

Installed like the microphone's (``live_page.py``: an ``<img onerror=…>`` inserted with ``gui.add_html``).
``window.__splattalkMirror`` opens the camera (``getUserMedia({video})``), plays it in a detached
``<video>``, and every ``1 / SEND_FPS`` s (``requestVideoFrameCallback`` would name new frames, but
Chromium calls it only for videos it composites, and this one is not shown) draws the current frame on a
canvas of ``INPUT_SIDE`` px on its longer side, JPEG-encodes it (lower quality when over the size cap,
skipped when still over) and writes ``v <seq> <page ms> <base64>`` through the shared hidden-input
transport (``page_transport.py``'s lanes over the panels of ``VIDEO_LABELS``). At each drawn page frame
it reads the status element's ``data-seq``/``data-page-ms`` (the camera frame behind the pose the server
last sent): each new one is one mirrored frame shown, and now minus its capture time is one
camera→avatar lag (``history`` keeps ``[page ms, seq, lag]`` for the browser test and
``scripts/bench_webcam.py``).
"""

from __future__ import annotations

import html

from splattalk.viewer.audio_sync import _handler
from splattalk.viewer.live_video import INPUT_SIDE, JPEG_QUALITY, SEND_FPS, VIDEO_LABELS, VideoLimits
from splattalk.viewer.page_transport import LANE_GAP_MS, TRANSPORT_JS, add_hidden_inputs

STATUS_ID = "splattalk-mirror"

MIRROR_JS = """
var M = window.__splattalkMirror || (window.__splattalkMirror = {on: false, seq: 0, cmd: -1});
M.history = M.history || []; M.captureMs = M.captureMs || [];
M.labels = %(labels)s; M.statusId = '%(status_id)s';
M.lanes = M.lanes || window.__splattalkTransport.lanes(M.labels, %(gap)d);  // each panel: one per %(gap)d ms
M.send = function(text) {  // a control message: through the first free lane, as soon as one is free
  if (!M.lanes.send(text)) setTimeout(function() { M.send(text); }, M.lanes.wait() + 1);
};
M.start = function() {
  if (M.on) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { M.send('e NoMediaDevices'); return; }
  M.on = true;
  navigator.mediaDevices.getUserMedia({audio: false, video: {
      width: {ideal: 640}, height: {ideal: 480}, frameRate: {ideal: 30}}})
    .then(function(stream) {
      if (!M.on) { stream.getTracks().forEach(function(t) { t.stop(); }); return; }
      var v = document.createElement('video');
      v.muted = true; v.playsInline = true; v.srcObject = stream;
      M.video = v; M.stream = stream; M.sentAt = -1e9;
      M.canvas = M.canvas || document.createElement('canvas'); M.g = M.canvas.getContext('2d');
      stream.getTracks().forEach(function(t) { t.onended = function() { M.stop(); }; });
      v.play(); M.tick();
    })
    .catch(function(err) { M.on = false; M.send('e ' + ((err && err.name) || 'Error').replace(/[^A-Za-z]/g, '')); });
};
M.tick = function() {
  if (!M.on || !M.video) return;
  var wait = M.sentAt + 1000 / %(fps)d - performance.now();
  if (wait <= 0 && M.lanes.wait() <= 0 && M.video.readyState >= 2 && M.video.videoWidth) M.capture();
  M.timer = setTimeout(M.tick, Math.max(4, Math.min(wait, 1000 / %(fps)d)));
};
M.capture = function() {
  var v = M.video, s = Math.min(1, %(side)d / Math.max(v.videoWidth, v.videoHeight, 1));
  var w = Math.max(1, Math.round(v.videoWidth * s)), h = Math.max(1, Math.round(v.videoHeight * s));
  if (M.canvas.width !== w || M.canvas.height !== h) { M.canvas.width = w; M.canvas.height = h; }
  var now = performance.now();
  M.g.drawImage(v, 0, 0, w, h);
  var q = %(quality)s, url = M.canvas.toDataURL('image/jpeg', q);
  while (url.length > %(most)d && q > 0.35) { q -= 0.2; url = M.canvas.toDataURL('image/jpeg', q); }
  if (url.length > %(most)d) return;  // over the cap even at low quality: skip this frame
  M.sentAt = now;
  M.lanes.send(['v', M.seq++, now.toFixed(1), url.slice(url.indexOf(',') + 1)].join(' '));  // a lane is free (tick)
  M.captureMs.push(performance.now() - now); if (M.captureMs.length > 100) M.captureMs.shift();
};
M.stop = function() {
  var was = M.on; M.on = false;
  if (M.timer) clearTimeout(M.timer);
  if (M.stream) M.stream.getTracks().forEach(function(t) { t.stop(); });
  if (M.video) M.video.srcObject = null;
  M.stream = M.video = M.timer = null;
  if (was) M.send('s');
};
M.command = function(seq, action) {
  if (seq <= M.cmd) return; M.cmd = seq;
  if (action === 'start') M.start(); else if (action === 'stop') M.stop();
};
M.draw = function() {
  M.lanes.find();  // hides the panels early
  var el = document.getElementById(M.statusId);
  if (el && el.dataset.seq && el.dataset.seq !== M.seen) {
    M.seen = el.dataset.seq; var now = performance.now();
    M.history.push([now, parseInt(el.dataset.seq, 10), now - parseFloat(el.dataset.pageMs)]);
    if (M.history.length > 5000) M.history.shift();
  }
  requestAnimationFrame(M.draw);
};
if (!M.installed) { M.installed = true; requestAnimationFrame(M.draw); }
"""


def mirror_js() -> str:
    most = VideoLimits().max_message_chars - 40  # room for the message's header
    return TRANSPORT_JS + MIRROR_JS % {
        "labels": "[" + ", ".join(f"'{label}'" for label in VIDEO_LABELS) + "]",
        "status_id": STATUS_ID,
        "gap": LANE_GAP_MS,
        "fps": SEND_FPS,
        "side": INPUT_SIDE,
        "quality": JPEG_QUALITY,
        "most": most,
    }


def command_html(seq: int, action: str) -> str:
    """Install the controller (idempotent) and ask it to ``start``/``stop`` (``seq`` makes each request new)."""
    call = f"window.__splattalkMirror.command({int(seq)}, {action!r})" if action in ("start", "stop") else ""
    return _handler(mirror_js() + call)


def status_html(text: str, shown: tuple[int, float] | None) -> str:
    data = "" if shown is None else f' data-seq="{int(shown[0])}" data-page-ms="{shown[1]:.1f}"'
    return (
        f'<div id="{STATUS_ID}"{data} style="font-family:monospace;font-size:0.8em;margin:0 0.75em 0.5em">'
        f"{html.escape(text)}</div>"
    )


class MirrorControls:
    """The "Mirror me" and "Stop mirroring" buttons, the status line, and the hidden inputs (a panel each)."""

    def __init__(self, gui):
        self.gui = gui
        self.mirror = gui.add_button("Mirror me", icon="camera", hint="the avatar copies your face from the webcam")
        self.stop = gui.add_button("Stop mirroring", icon="camera-off")
        self.status_el = gui.add_html(status_html("camera: off", None))
        self.command_el = gui.add_html(command_html(0, ""))
        self.inputs = []
        self._seq = 0
        self._status = ""

    def add_input_panels(self) -> None:
        """Floating panels outside any folder, one input each: viser throttles each panel to 20 messages a second."""
        self.inputs = add_hidden_inputs(self.gui, VIDEO_LABELS)

    def command(self, action: str) -> None:
        self._seq += 1
        self.command_el.content = command_html(self._seq, action)

    def status(self, text: str, shown: tuple[int, float] | None) -> None:
        content = status_html(text, shown)
        if content != self._status:
            self._status = content
            self.status_el.content = content
