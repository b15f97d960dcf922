"""The light splat stream against the full-buffer one, in headless Chromium: the same frame, two screenshots.

Starts two viewers on the embedded default avatar (20k Gaussians), one with
``--no-light-stream`` (every Gaussian every frame) and one with the light stream,
loads the same sample clip in each, pauses both at the same frame after playing
into it (so the light stream has sent a run of partial updates, not only its
first full one), screenshots the page and prints the pixel difference.

    python scripts/screenshot_stream.py [--out-dir docs] [--frame 80]

Last line: ``avatar pixels differing > 8/255: P % of N; max M/255; mean abs diff: D``
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
VIEWPORT = {"width": 900, "height": 700}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shot(browser, light: bool, sample: str, frame: int, out: Path) -> np.ndarray:
    from PIL import Image

    from splattalk.viewer.config import ViewConfig
    from splattalk.viewer.server import ViewServer

    server = ViewServer(ViewConfig(port=_port(), light_stream=light), log=lambda *a, **k: None).start()
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"http://127.0.0.1:{server.port}")
        page.wait_for_selector("#splattalk-readout", timeout=120_000)
        deadline = time.monotonic() + 60
        while not server.sessions and time.monotonic() < deadline:
            time.sleep(0.1)
        session, _ = next(iter(server.sessions.values()))
        clip = session.use_sample(sample)
        while not clip.done:
            time.sleep(0.1)
        # play through the frames before the one shown (the light stream sends partial updates all along)
        session.pause()
        for f in range(0, frame + 1, 2):
            session.seek_frame(f)
            time.sleep(0.08)
        session.seek_frame(frame)
        time.sleep(6.0)  # software WebGL: let the page sort and draw
        page.screenshot(path=str(out))
        page.close()
    finally:
        server.stop()
    return np.asarray(Image.open(out).convert("RGB"), np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--sample", default="sample_en_1.wav")
    parser.add_argument("--frame", type=int, default=80)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        full = shot(browser, False, args.sample, args.frame, args.out_dir / "stream_full.png")
        light = shot(browser, True, args.sample, args.frame, args.out_dir / "stream_light.png")
        browser.close()
    diff = np.abs(full - light).max(axis=2)
    from PIL import Image

    side = np.concatenate([full, light, np.clip(np.abs(full - light) * 20, 0, 255)], axis=1).astype(np.uint8)
    Image.fromarray(side).save(args.out_dir / "stream_compare.png")
    print(f"wrote {args.out_dir / 'stream_compare.png'} (full buffer | light stream | difference ×20)")
    print(f"max abs diff: {diff.max():.0f}/255")
    print(f"wrote {args.out_dir / 'stream_full.png'} and {args.out_dir / 'stream_light.png'} (frame {args.frame})")
    # the avatar: non-white pixels between the notifications (left) and the control panel (right); the
    # panel's text (frame number, fps) differs between the two pages and is not the stream's doing
    avatar = np.zeros(diff.shape, bool)
    avatar[140:, 300:560] = True
    avatar &= (full.min(axis=2) < 245) | (light.min(axis=2) < 245)
    print(f"whole page: {100 * (diff > 8).mean():.3f} % of pixels differ > 8/255 (includes the panel's text)")
    print(
        f"avatar pixels differing > 8/255: {100 * (diff[avatar] > 8).mean():.3f} % of {avatar.sum()}; "
        f"max {diff[avatar].max():.0f}/255; mean abs diff: {np.abs(full - light).max(axis=2)[avatar].mean():.3f}"
    )


if __name__ == "__main__":
    main()
