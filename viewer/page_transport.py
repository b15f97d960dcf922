"""Page → server transport for streamed captures (Talk live's microphone; reusable by other page captures).

viser gives page code no channel of its own; a controller installed in the page (``audio_sync._handler``) writes
text into a hidden viser text input, and React sends it like a keystroke. Each *panel* of inputs sends through
its own newest-wins sender throttled to one message per 50 ms (viser's ``GuiComponentContextProvider``): two
messages written to one panel less than 50 ms apart lose the first. A stream faster than that is spread over
several hidden inputs, each in a floating panel of its own, used in turn (:data:`TRANSPORT_JS`'s ``send``
picks the one idle longest and waits only when every lane sent within ``gap`` ms).

``window.__splattalkTransport`` (installed once per page):

* ``find(label)``: the input whose label is ``label`` (its panel hidden on first sight), or null;
* ``write(label, text)``: set that input's value as a keystroke would;
* ``lanes(labels, gap)``: ``{send(text) → bool}`` over those inputs (false: every lane is busy: try later,
  ``wait()`` ms from now);
* ``b64(typedArray)``: base64 of its bytes.
"""

from __future__ import annotations

THROTTLE_MS = 50
"""viser sends a panel's newest value at most this often."""
LANE_GAP_MS = 55
"""Least time between two messages through one lane (the throttle plus a margin for timer jitter)."""

TRANSPORT_JS = """
var T = window.__splattalkTransport;
if (!T) {
  T = window.__splattalkTransport = {els: {}};
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
    el = T.els[label] = box.querySelector('input'); return el;
  };
  T.write = function(label, text) {
    var input = T.find(label); if (!input) return false;
    var setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    setter.call(input, text); input.dispatchEvent(new Event('input', {bubbles: true}));
    return true;
  };
  T.lanes = function(labels, gap) {
    var at = labels.map(function() { return -1e9; });
    var pick = function() {
      var k = 0; for (var i = 1; i < at.length; i++) if (at[i] < at[k]) k = i; return k;
    };
    return {
      wait: function() { return Math.max(0, at[pick()] + gap - performance.now()); },
      send: function(text) {
        var k = pick(), now = performance.now();
        if (now - at[k] < gap) return false;
        at[k] = now; T.write(labels[k], text); return true;
      },
      find: function() { labels.forEach(T.find); }
    };
  };
  T.b64 = function(a) {
    var u8 = new Uint8Array(a.buffer, a.byteOffset, a.byteLength), s = '';
    for (var i = 0; i < u8.length; i += 4096) s += String.fromCharCode.apply(null, u8.subarray(i, i + 4096));
    return btoa(s);
  };
}
"""


def add_hidden_inputs(gui, labels: tuple[str, ...]) -> list:
    """One floating panel with one text input per label (hidden by the page's controller); the inputs' handles.

    Each gets a panel of its own: viser throttles each panel's messages separately.
    """
    inputs = []
    for label in labels:
        panel = gui.add_panel()
        with panel.add_tab(label):
            inputs.append(gui.add_text(label, initial_value=""))
        panel.float()
    return inputs
