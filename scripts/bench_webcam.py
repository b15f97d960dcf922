"""Benchmark Mirror me: webcam frames per second mirrored in the page, end to end in headless Chromium.

Ours, end to end: a viewer server (embedded default avatar thinned to ``--gaussians``: headless Chromium draws
with SwiftShader on the CPU) with ``splattalk view``'s live tracker, and a Chromium tab whose fake camera plays
a real clip (converted at run time to y4m with imageio-ffmpeg's binary; Chromium loops it). "Mirror me" is
pressed; for ``seconds`` the page counts the mirrored frames it receives (a new camera frame's pose in the
status element: ``live_video_page.py``'s ``history``) — the webcam fps a person sees — and their lag from
capture. The server's tracked fps and per-frame tracker time come from the session.

Baseline: the same tracker (``splattalk.mirror.Mirror``) alone, in this process, on the clip's frames scaled
as the page scales them (``INPUT_SIDE`` px on the longer side), one after the other: tracker-only fps.

    python scripts/bench_webcam.py [--seconds 20] [--clip ../shared/real/obama_address_uncropped.mp4]

Last line: ``webcam fps: X; tracker-only fps: Y; ratio X/Y``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from splattalk.atomic import write_bytes

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
REAL = next(
    (p for p in (ROOT.parent / "shared" / "real", ROOT.parents[1] / "shared" / "real") if p.is_dir()),
    ROOT.parent / "shared" / "real",
)
"""``../shared/real`` next to the checkout (or one level further up, for a worktree in a subfolder)."""
CLIP = REAL / "obama_address_uncropped.mp4"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
DRAWS_JS = """() => { const B = window.__bench = {raf: 0, t0: performance.now()};
  const f = () => { B.raf++; requestAnimationFrame(f); }; requestAnimationFrame(f); }"""


def to_y4m(clip: Path, out: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``clip`` as 25-fps y4m (Chromium's fake-camera format), size kept."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-i", str(clip), "-t", f"{seconds:.2f}"]
    cmd += ["-vf", "fps=25,scale=trunc(iw/2)*2:trunc(ih/2)*2", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(out)]
    subprocess.run(cmd, check=True)
    return out


def clip_frames(clip: Path, seconds: float) -> list[np.ndarray]:
    """RGB frames of the first ``seconds`` at 25 fps, scaled as the page scales them."""
    import av
    import cv2

    from splattalk.viewer.live_video import INPUT_SIDE

    frames = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t >= seconds:
                break
            if len(frames) < int(t * 25 + 1e-6) + 1:
                rgb = frame.to_ndarray(format="rgb24")
                s = min(1.0, INPUT_SIDE / max(rgb.shape[:2]))
                size = (round(rgb.shape[1] * s), round(rgb.shape[0] * s))
                frames.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
    return frames


def tracker_only(clip: Path, seconds: float, head, shape) -> dict:
    from splattalk.mirror import Mirror

    frames = clip_frames(clip, seconds)
    mirror = Mirror(head, shape)
    try:
        out = [mirror(frames[0], 0.0)]  # the first frame detects the face and starts from PnP
        t0 = time.perf_counter()
        out += [mirror(f, (i + 1) / 25) for i, f in enumerate(frames[1:])]
        elapsed = time.perf_counter() - t0
    finally:
        mirror.close()
    n = len(frames) - 1
    jaw = np.array([o[0][-3] if o is not None else np.nan for o in out])
    return {"frames": n, "faces": int(np.isfinite(jaw).sum()), "fps": n / elapsed, "ms": 1000 * elapsed / n, "jaw": jaw}


def jaw_agreement(jaw: np.ndarray, tracks: Path) -> tuple[float, float]:
    """r between the live tracker's jaw and the offline tracker's (``tracks.npz`` of the same clip, 25 fps), and the
    same r with the offline jaw shifted by 1 s (what unrelated motion gets)."""
    from splattalk.run import Tracks

    offline = Tracks.load(tracks).per_frame()["jaw"][:, 0]
    n = min(len(jaw), len(offline))
    a, b = jaw[:n], offline[:n]
    ok = np.isfinite(a)
    shifted = np.roll(b, 25)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]), float(np.corrcoef(a[ok], shifted[ok])[0, 1])


def save_screenshot(page, out: Path) -> None:
    """The page, with the camera frame it sent last on its left (the avatar shows a pose from ~the lag before)."""
    import base64

    import cv2

    shot = cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    url = page.evaluate("window.__splattalkMirror.canvas.toDataURL('image/png')")
    camera = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    h = shot.shape[0]
    camera = cv2.resize(camera, (round(camera.shape[1] * h / camera.shape[0]), h), interpolation=cv2.INTER_AREA)
    cv2.putText(camera, "webcam (fake)", (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    ok, png = cv2.imencode(".png", np.hstack([camera, shot]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    write_bytes(out, png.tobytes())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_page(clip: Path, seconds: float, avatar, screenshot: Path | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    from splattalk.mirror import mirror_factory
    from splattalk.viewer.config import ViewConfig
    from splattalk.viewer.server import ViewServer, load_resources

    cmd = ViewConfig(port=free_port(), loudness_only=True)
    resources = load_resources(cmd, log=lambda *a, **k: None)
    resources.avatar = avatar
    resources.mirror = mirror_factory(avatar, None)
    server = ViewServer(cmd, resources=resources, log=lambda *a, **k: None).start()
    with tempfile.TemporaryDirectory(prefix="bench-webcam-") as tmp:
        y4m = to_y4m(clip, Path(tmp) / "clip.y4m", min(seconds, 10.0))
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=[*ARGS, f"--use-file-for-fake-video-capture={y4m}"]
            )
            try:
                page = browser.new_page(viewport={"width": 900, "height": 480})
                page.goto(f"http://127.0.0.1:{server.port}")
                page.wait_for_selector("#splattalk-mirror", timeout=60_000)
                session = next(iter(server.sessions.values()))[0]
                page.get_by_role("button", name="Mirror me").click()
                deadline = time.monotonic() + 60
                while session.mirror.faces < 5:
                    if time.monotonic() > deadline:
                        raise RuntimeError("no mirrored frame within 60 s")
                    time.sleep(0.1)
                page.evaluate("window.__splattalkMirror.history = []")
                page.evaluate(DRAWS_JS)
                sent0, t0 = page.evaluate("window.__splattalkMirror.seq"), time.monotonic()
                tracked0, received0, dropped0 = session.mirror.tracked, session.mirror.received, session.mirror.dropped
                time.sleep(seconds)
                history = np.array(page.evaluate("window.__splattalkMirror.history"))
                sent = page.evaluate("window.__splattalkMirror.seq") - sent0
                elapsed = time.monotonic() - t0
                capture_ms = float(np.median(page.evaluate("window.__splattalkMirror.captureMs")))
                draws = page.evaluate("window.__bench.raf / ((performance.now() - window.__bench.t0) / 1000)")
                tracked = session.mirror.tracked - tracked0
                received = session.mirror.received - received0
                track_ms = float(np.median(session.mirror.track_ms))
                dropped = session.mirror.dropped - dropped0
                if screenshot is not None:
                    save_screenshot(page, screenshot)
            finally:
                browser.close()
                server.stop()
    span = (history[-1, 0] - history[0, 0]) / 1000 if len(history) > 1 else elapsed
    return {
        "webcam_fps": (len(history) - 1) / span if len(history) > 1 else 0.0,
        "lag_ms": float(np.median(history[:, 2])) if len(history) else float("nan"),
        "sent_fps": sent / elapsed,
        "tracked_fps": tracked / elapsed,
        "received_fps": received / elapsed,
        "track_ms": track_ms,
        "dropped": dropped,
        "draws_fps": float(draws),
        "capture_ms": capture_ms,
    }


def run(
    seconds: float = 20.0,
    clip: Path = CLIP,
    gaussians: int = 3000,
    screenshot: Path | None = None,
    offline_tracks: Path | None = None,
) -> dict:
    """Webcam fps in the page (end to end) and the tracker alone on the same clip; see the module docstring.

    With ``offline_tracks`` (``tracks.npz`` of ``splattalk track`` on the same clip, default head) the tracker-only
    pass uses that run's identity shape and its jaw is compared with the offline one (``jaw_r``, ``jaw_r_shifted``).
    """
    from splattalk.avatar.painted import build_default_avatar

    clip = Path(clip)
    if not clip.is_file():
        raise SystemExit(f"no clip at {clip} (the real clips live in ../shared/real; pass --clip)")
    avatar = build_default_avatar(gaussians)
    page = in_page(clip, seconds, avatar, screenshot)
    shape = avatar.shape.numpy()
    if offline_tracks is not None:
        from splattalk.run import Tracks

        shape = Tracks.load(offline_tracks).shape
    alone = tracker_only(clip, min(seconds, 20.0), avatar.head, shape)
    out = {**page, "tracker_only_fps": alone["fps"], "tracker_only_ms": alone["ms"], "faces": alone["faces"]}
    if offline_tracks is not None:
        out["jaw_r"], out["jaw_r_shifted"] = jaw_agreement(alone["jaw"], offline_tracks)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--gaussians", type=int, default=3000, help="Gaussians of the (thinned) default avatar")
    parser.add_argument("--screenshot", type=Path, default=None, help="save the page at the end of the run")
    parser.add_argument(
        "--offline-tracks",
        type=Path,
        default=None,
        help="tracking/tracks.npz of `splattalk track` on the same clip: compare the live jaw with it",
    )
    args = parser.parse_args()
    r = run(args.seconds, args.clip, args.gaussians, args.screenshot, args.offline_tracks)
    print(f"clip {args.clip.name}, {args.seconds:.0f} s, {args.gaussians} Gaussians; load {os.getloadavg()[0]:.1f}")
    print(
        f"page: {r['sent_fps']:.1f} frames sent/s ({r['capture_ms']:.0f} ms to capture + encode + send one), "
        f"draws {r['draws_fps']:.1f}/s, camera→avatar lag {r['lag_ms']:.0f} ms"
    )
    print(
        f"server: {r['received_fps']:.1f} received/s, {r['tracked_fps']:.1f} tracked/s at {r['track_ms']:.0f} ms, "
        f"{r['dropped']} dropped (newest wins)"
    )
    print(f"tracker alone: {r['tracker_only_ms']:.1f} ms a frame ({r['faces']} faces)")
    if "jaw_r" in r:
        print(f"live vs offline tracker jaw r: {r['jaw_r']:.3f} (offline shifted by 1 s: {r['jaw_r_shifted']:.3f})")
    print(
        f"webcam fps: {r['webcam_fps']:.1f}; tracker-only fps: {r['tracker_only_fps']:.1f}; "
        f"ratio {r['webcam_fps'] / r['tracker_only_fps']:.2f}"
    )


if __name__ == "__main__":
    main()
