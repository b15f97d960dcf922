"""Screenshot the live viewer for the docs: the default avatar (20k Gaussians) talking a sample clip.

Starts the viewer on a free port, drives Debian's headless Chromium with Playwright
(software WebGL: slow, but the picture is the same), uploads a sample clip and saves
``docs/viewer.png`` mid-sentence.

    python scripts/screenshot_viewer.py [--out docs/viewer.png] [--seconds 2.0] [--run demo]
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "viewer.png")
    parser.add_argument("--speech", type=Path, default=ROOT / "splattalk" / "data" / "speech" / "sample_en_2.wav")
    parser.add_argument("--seconds", type=float, default=2.0, help="audio position of the screenshot")
    parser.add_argument(
        "--run", type=Path, default=None, help="a fitted run folder (default: the embedded default avatar)"
    )
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from splattalk.viewer.config import ViewConfig
    from splattalk.viewer.server import ViewServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ViewServer(ViewConfig(run=args.run, port=port)).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"http://127.0.0.1:{port}")
            page.wait_for_selector("#splattalk-readout", timeout=120_000)
            page.evaluate(
                "document.querySelectorAll('.mantine-Notification-closeButton').forEach(b => b.click())"
            )  # software-WebGL notice
            page.set_input_files("input[type=file]", str(args.speech))
            session = next(iter(server.sessions.values()))[0]
            deadline = time.monotonic() + 120
            while not (session.player.playing and session.player.position(time.monotonic()) > args.seconds):
                assert time.monotonic() < deadline, "the clip did not play"
                time.sleep(0.02)
            session.pause()  # hold this frame (and the audio) while the slow software renderer catches up
            time.sleep(5.0)
            page.screenshot(path=str(args.out))
            browser.close()
    finally:
        server.stop()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
