"""Benchmark Talk live: microphone → mouth latency, end to end in headless Chromium, and where it goes.

Ours: a viewer server (the default talk model's read-out drives the mouth; embedded default avatar,
thinned to ``--gaussians`` because headless Chromium draws
with SwiftShader on the CPU) and a Chromium tab whose fake microphone plays a speech file on a loop
(``--use-fake-device-for-media-stream --use-file-for-fake-audio-capture``). "Talk live" is pressed; for
``--seconds`` the page measures, at each drawn page frame where the mouth changed, now minus the capture time
of the audio behind that mouth (``live_page.py``: the centre of the newest 40-ms frame; capture time is when
the page's audio graph delivered the samples — the device's own input latency is not included). Median
over the run. The same run is broken down per mouth frame into its stages (page and server timestamps joined
on the frame's audio time; page ↔ server clocks through ``performance.timeOrigin``, both this machine's clock).

Baseline: the streaming talk model (``talk.TalkStream``, 4-s windows), fed the same audio in 64-ms chunks on
this machine without a browser: for each frame, how long after its audio was captured the stream returned it
(audio still to be captured for the window + compute). The browser's delivery and drawing are not added to
it: the baseline is a lower bound.

Then the issue's combined line: the light stream's payload from ``scripts/bench_viewer.py``'s measurement
(``bench_payload`` on the talk model's motion for the sample, the default step), and the webcam's fps from
``scripts/bench_webcam.py``'s ``run()``. Last lines:

    baseline/live latency ratio: R
    mic→mouth ms: N; webcam fps: F; payload KB/frame: P
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
  window.__splattalkLive.history = []; window.__splattalkLive.sent = [];
  const B = window.__bench = {t0: performance.now(), raf: 0, arrivals: [], seen: null};
  const f = () => { B.raf++; requestAnimationFrame(f); }; requestAnimationFrame(f);
  new MutationObserver(() => { const el = document.getElementById('splattalk-live');
    const ms = el && el.dataset.audioMs;
    if (ms && ms !== B.seen) { B.seen = ms; B.arrivals.push([ms, performance.now()]); } })
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


def load_script(name: str):
    """A module of scripts/ (not a package) by file name."""
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure_live(seconds: float, gaussians: int, wav: Path, loudness_only: bool, script_processor: bool) -> dict:
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
            if script_processor:
                page.evaluate("window.__splattalkLive.useWorklet = true")
            deadline = time.monotonic() + 30
            while not server.sessions and time.monotonic() < deadline:
                time.sleep(0.05)
            session = next(iter(server.sessions.values()))[0]
            session.live.trace = []
            page.get_by_role("button", name="Talk live").click()
            page.wait_for_function(
                "() => window.__splattalkLive && window.__splattalkLive.history.length > 5", timeout=30_000
            )
            time.sleep(2.0)  # warm-up
            page.evaluate(ARRIVAL_JS)
            time.sleep(seconds)
            history, sent, bench, now, origin, mode, meter = page.evaluate(
                "[window.__splattalkLive.history, window.__splattalkLive.sent, window.__bench, performance.now(),"
                " performance.timeOrigin, window.__splattalkLive.mode,"
                " document.getElementById('splattalk-live-meter').textContent]"
            )
            refused = session.live.refused
            trace, shown = list(session.live.trace), list(session.live.shown_trace)
            browser.close()
    finally:
        server.stop()
    lags = np.array([entry[1] for entry in history], float)
    return {
        "lags": lags,
        "stages": stages(history, sent, bench["arrivals"], origin, trace, shown),
        "page_fps": bench["raf"] / ((now - bench["t0"]) / 1000.0),
        "refused": refused,
        "mode": mode,
        "meter": meter,
    }


STAGES = (
    "frame centre → its 40-ms chunk complete (half a frame)",
    "chunk captured → the page sends it (audio thread → main thread, lanes)",
    "page sends → server handler starts (websocket, viser dispatch)",
    "server: decode + read-out → mouth ready",
    "mouth ready → frame sent (playback thread wakes, light stream packs, viser send)",
    "frame sent → status in the page's DOM (websocket, page handles the splat update)",
    "in the DOM → drawn (the next animation frame)",
)


def stages(history, sent, arrivals, origin, trace, shown) -> list[np.ndarray]:
    """Per drawn mouth frame, each stage of :data:`STAGES` in ms (page and server times joined on audio ms)."""
    key = lambda ms: f"{float(ms):.1f}"  # noqa: E731 - both sides print the page ms with one decimal
    sent_at = {key(c): t for c, t in sent}
    arrived = {key(ms): t for ms, t in arrivals}
    server = {key(f): (c, r, m) for f, c, r, m in trace}
    out_at = {key(f): t for f, t in shown}
    rows = []
    for drawn, _, ms in history:
        k = key(ms)
        if k not in server or k not in arrived or k not in out_at:
            continue
        chunk_ms, received, ready = server[k]
        if key(chunk_ms) not in sent_at:
            continue
        send = sent_at[key(chunk_ms)]
        rows.append(
            (
                chunk_ms - float(ms),
                send - chunk_ms,
                1000.0 * received - (origin + send),
                1000.0 * (ready - received),
                1000.0 * (out_at[k] - ready),
                (origin + arrived[k]) - 1000.0 * out_at[k],
                drawn - arrived[k],
            )
        )
    return [np.array(col) for col in zip(*rows)] if rows else []


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
    ap.add_argument(
        "--worklet",
        action="store_true",
        help="capture with an AudioWorklet instead of the default ScriptProcessorNode",
    )
    ap.add_argument("--no-extras", action="store_true", help="skip the payload and webcam measurements")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    load = os.getloadavg()[0]
    live = measure_live(args.seconds, args.gaussians, args.wav, args.loudness_only, args.worklet)
    lags = live["lags"]
    if lags.size == 0:
        raise SystemExit("the page measured no mic→mouth lag (no mouth frame was drawn)")
    print(f"load average {load:.1f} on {os.cpu_count()} cores (a shared, loaded machine: figures are noisy)")
    print(
        "mouth source: "
        f"{'loudness jaw' if args.loudness_only else 'talk-model read-out (no lookahead), gated by loudness'}; "
        f"capture: {live['mode']}"
    )
    print(
        f"live: {lags.size} mouth frames drawn over {args.seconds:.0f} s; "
        f"page draws {live['page_fps']:.1f} fps (SwiftShader); "
        f"lag median {np.median(lags):.0f} ms, p10 {np.percentile(lags, 10):.0f}, p90 {np.percentile(lags, 90):.0f}; "
        f"messages refused {live['refused']}"
    )
    print(f"the page's readout at the end: {live['meter']!r}")
    cols = live["stages"]
    if cols:
        print(f"where it goes (medians over the {cols[0].size} drawn mouth frames traced end to end):")
        for name, col in zip(STAGES, cols):
            print(f"  {np.median(col):6.0f} ms  (p90 {np.percentile(col, 90):4.0f})  {name}")
        total = np.sum(cols, axis=0)
        print(f"  {np.median(total):6.0f} ms  total of the traced frames")
    base = measure_baseline(args.seconds)
    if base.size:
        print(
            "baseline (talk model stream, 4-s windows, no browser): "
            f"median {np.median(base):.0f} ms, p90 {np.percentile(base, 90):.0f}"
        )
    else:
        print("baseline: no talk model available")
    payload = webcam = "n/a"
    if not args.no_extras:
        payload = f"{measure_payload():.0f}"
        webcam = measure_webcam()
    if base.size:
        print(f"baseline/live latency ratio: {np.median(base) / np.median(lags):.1f}")
    print(f"mic→mouth ms: {np.median(lags):.0f}; webcam fps: {webcam}; payload KB/frame: {payload}")


def measure_payload() -> float:
    """KB a frame of the light stream's default step, as ``scripts/bench_viewer.py`` measures it."""
    from splattalk.avatar.io import load_avatar
    from splattalk.viewer.server import DEFAULT_AVATAR

    bench = load_script("bench_viewer")
    avatar = load_avatar(DEFAULT_AVATAR)
    steps = bench.bench_payload(avatar, bench.speech_motion(avatar))
    default = [nbytes for name, nbytes, _ in steps if "(default)" in name]
    nbytes = default[0] if default else steps[-1][1]
    print(f"payload (bench_viewer.bench_payload, default step): {nbytes / 1024:.1f} KB/frame")
    return nbytes / 1024


def measure_webcam() -> str:
    """Webcam fps in the page, from ``scripts/bench_webcam.py``'s ``run()`` (same machine, same run)."""
    result = load_script("bench_webcam").run()
    print(f"webcam (bench_webcam.run): {result}")
    return f"{result['webcam_fps']:.0f}"


if __name__ == "__main__":
    main()
