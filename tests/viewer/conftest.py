"""Fixtures of the browser tests: Playwright (skipped without Debian's chromium) and a viewer on a free port."""

from __future__ import annotations

import os
import socket

import pytest
from viewer_helpers import CHROMIUM, small_avatar


@pytest.fixture(scope="module")
def playwright_api():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def server():
    """A viewer with a small default avatar (3000 Gaussians: quick to draw in software WebGL)."""
    from splattalk.viewer.config import ViewConfig
    from splattalk.viewer.server import ViewServer, load_resources

    cmd = ViewConfig(port=free_port())
    resources = load_resources(cmd, log=lambda *a, **k: None)
    resources.avatar = small_avatar(3000)
    srv = ViewServer(cmd, resources=resources, log=lambda *a, **k: None).start()
    yield srv
    srv.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
