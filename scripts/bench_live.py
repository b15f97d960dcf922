"""Benchmark Talk live: microphone → mouth latency, end to end in headless Chromium.

Ours: a viewer server (the default talk model's read-out drives the mouth; embedded default avatar,
thinned to ``--gaussians`` because headless Chromium draws
with SwiftShader on the CPU) and a Chromium tab whose fake microphone plays a speech file on a loop
(``--use-fake-device-for-media-stream --use-file-for-fake-audio-capture``). "Talk live" is pressed; for
``--seconds`` the page measures, at each drawn page frame where the mouth changed, now minus the capture time
of the audio behind that mouth (``live_page.py``: the centre of the newest 40-ms frame; capture time is when
the page's audio graph delivered the samples — the device's own input latency is not included). Median
over the run.

Baseline: the streaming talk model (``talk.TalkStream``, 4-s windows), fed the same audio in the page's
64-ms chunks on this machine without a browser: for each frame, how long after its audio was captured the
stream returned it (audio still to be captured for the window + compute). The browser's delivery and drawing
are not added to it: the baseline is a lower bound.

Last lines:

    baseline/live latency ratio: R
    mic→mouth ms: N
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SPEECH = ROOT / "splattalk" / "data" / "speech" / "sample_en_1.wav"


# In the page: count draws, and each time the status element's audio time changes (the server's update landed in
# the page's DOM, before it is drawn), now minus that audio time: the lag without the page's drawing.
ARRIVAL_JS = """() => {
  window.__splattalkLive.history = [];
  const B = window.__bench = {t0: performance.now(), raf: 0, arrivals: [], seen: null};
  const f = () => { B.raf++; requestAnimationFrame(f); }; requestAnimationFrame(f);
  new MutationObserver(() => { const el = document.getElementById('splattalk-live');
    const ms = el && el.dataset.audioMs;
    if (ms && ms !== B.seen) { B.seen = ms; B.arrivals.push(performance.now() - parseFloat(ms)); } })
    .observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-audio-ms']});
}"""


def thin_avatar(num: int):
    spec = importlib.util.spec_from_file_location("make_default_avatar", ROOT / "scripts" / "make_default_avatar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_default_avatar(num)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_live(seconds: float, gaussians: int, wav: Path, loudness_only: bool) -> dict:
    from playwright.sync_api import sync_playwright

    from splattalk.viewer.config import ViewConfig
    from splattalk.viewer.server import ViewServer, load_resources

    cmd = ViewConfig(port=free_port(), loudness_only=loudness_only)
    resources = load_resources(cmd, log=lambda *a, **k: None)
    if gaussians:
        resources.avatar = thin_avatar(gaussians)
    server = ViewServer(cmd, resources=resources, log=lambda *a, **k: None).start()
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--use-angle=swiftshader",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            page = browser.new_page(viewport={"width": 900, "height": 480})
            page.goto(f"http://127.0.0.1:{server.port}")
            page.wait_for_selector("#splattalk-live", timeout=60_000)
            page.get_by_role("button", name="Talk live").click()
            page.wait_for_function(
                "() => window.__splattalkLive && window.__splattalkLive.history.length > 5", timeout=30_000
            )
            time.sleep(2.0)  # warm-up
            page.evaluate(ARRIVAL_JS)
            time.sleep(seconds)
            history, bench, now = page.evaluate("[window.__splattalkLive.history, window.__bench, performance.now()]")
            arrivals = np.array(bench["arrivals"], float)
            session = next(iter(server.sessions.values()))[0]
            refused = session.live.refused
            browser.close()
    finally:
        server.stop()
    lags = np.array([lag for _, lag in history], float)
    return {
        "lags": lags,
        "arrivals": arrivals,
        "page_fps": bench["raf"] / ((now - bench["t0"]) / 1000.0),
        "refused": refused,
    }


def measure_baseline(seconds: float, chunk: int = 1024) -> np.ndarray:
    """Per frame: capture of its audio (frame centre) → the talk stream returned it, in ms."""
    import torch

    from splattalk.models import resolve_model
    from splattalk.talk.audio import load_audio
    from splattalk.talk.config import SAMPLE_RATE, SAMPLES_PER_FRAME
    from splattalk.talk.stream import TalkStream

    torch.set_num_threads(1)
    model = resolve_model(None, required=False, log=lambda *a, **k: None)
    if model is None:
        return np.zeros(0)
    speech = load_audio(SPEECH)
    audio = np.tile(speech, int(np.ceil(seconds * SAMPLE_RATE / speech.shape[0])))[: int(seconds * SAMPLE_RATE)]
    stream = TalkStream(model)
    lags, frames_out = [], 0
    for start in range(0, audio.shape[0] - chunk + 1, chunk):
        t = time.perf_counter()
        out = stream.push(audio[start : start + chunk])
        compute = time.perf_counter() - t
        captured = (start + chunk) / SAMPLE_RATE  # audio time when this chunk was complete
        for k in range(out.shape[0]):
            centre = (frames_out + k + 0.5) * SAMPLES_PER_FRAME / SAMPLE_RATE
            lags.append(1000.0 * (captured - centre + compute))
        frames_out += out.shape[0]
    return np.array(lags)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured run (after 2 s of warm-up)")
    ap.add_argument(
        "--gaussians",
        type=int,
        default=3000,
        help="avatar size (0: the embedded 20k default; SwiftShader draws it slowly)",
    )
    ap.add_argument(
        "--loudness-only", action="store_true", help="the loudness jaw instead of the talk model's read-out"
    )
    ap.add_argument("--wav", type=Path, default=SPEECH, help="what the fake microphone plays (looped)")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    load = os.getloadavg()[0]
    live = measure_live(args.seconds, args.gaussians, args.wav, args.loudness_only)
    lags = live["lags"]
    if lags.size == 0:
        raise SystemExit("the page measured no mic→mouth lag (no mouth frame was drawn)")
    print(f"load average {load:.1f} on {os.cpu_count()} cores (a shared, loaded machine: figures are noisy)")
    print(
        "mouth source: "
        f"{'loudness jaw' if args.loudness_only else 'talk-model read-out (no lookahead), gated by loudness'}"
    )
    print(
        f"live: {lags.size} mouth frames drawn over {args.seconds:.0f} s; "
        f"page draws {live['page_fps']:.1f} fps (SwiftShader); "
        f"lag median {np.median(lags):.0f} ms, p10 {np.percentile(lags, 10):.0f}, p90 {np.percentile(lags, 90):.0f}; "
        f"messages refused {live['refused']}"
    )
    arr = live["arrivals"]
    if arr.size:
        print(
            "  of which audio → the server's update in the page's DOM (before drawing): "
            f"median {np.median(arr):.0f} ms over {arr.size} updates"
        )
    base = measure_baseline(args.seconds)
    if base.size:
        print(
            "baseline (talk model stream, 4-s windows, no browser): "
            f"median {np.median(base):.0f} ms, p90 {np.percentile(base, 90):.0f}"
        )
        print(f"baseline/live latency ratio: {np.median(base) / np.median(lags):.1f}")
    else:
        print("baseline: no talk model available")
    print(f"mic→mouth ms: {np.median(lags):.0f}")


if __name__ == "__main__":
    main()
