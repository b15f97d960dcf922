"""Page → server transport shared by the page's live controllers (microphone, webcam).

viser has no message channel from page code to the server, but a GUI text input's value reaches the
server (``on_update``). A controller running in the page writes its messages into a hidden text input
through :data:`INPUT_JS`'s ``window.__splattalkInput``:

* ``find(label)`` finds the ``<input>`` of the viser text control labelled ``label`` and hides the
  floating panel it sits in (each such input gets a panel of its own: viser throttles every panel's
  messages separately to one per 50 ms, newest wins — so a panel carries at most 20 messages a second);
* ``send(label, text)`` sets its value with the native setter and fires an ``input`` event, which React's
  ``onChange`` turns into a viser update.
"""

from __future__ import annotations

PANEL_MIN_GAP_MS = 55
"""Least time between two messages through one panel (viser's per-panel throttle is 50 ms: closer ones can
be overwritten before they leave the page)."""

INPUT_JS = """
var T = window.__splattalkInput || (window.__splattalkInput = {els: {}});
T.find = function(label) {
  var el = T.els[label];
  if (el && el.isConnected) return el;
  var found = null, labels = document.querySelectorAll('label');
  for (var i = 0; i < labels.length; i++) if (labels[i].textContent === label) { found = labels[i]; break; }
  if (!found) return null;
  var box = found; while (box && !box.querySelector('input')) box = box.parentElement;
  if (!box) return null;
  var panel = box.closest('.mantine-Paper-root') || box.parentElement;
  if (panel && panel.style.visibility !== 'hidden') panel.style.visibility = 'hidden';
  T.els[label] = box.querySelector('input'); return T.els[label];
};
T.send = function(label, text) {
  var input = T.find(label); if (!input) return false;
  var setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  setter.call(input, text); input.dispatchEvent(new Event('input', {bubbles: true}));
  return true;
};
"""
