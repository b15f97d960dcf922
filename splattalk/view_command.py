"""``splattalk view``: the live viewer, with ``--drive`` resolved here (tracking a driving video is the
application's job; the viewer package only plays what it is given), and "Mirror me"'s live tracker
(``splattalk.mirror``) handed in the same way."""

from __future__ import annotations

from splattalk.mirror import mirror_factory
from splattalk.reenact import view_drive
from splattalk.viewer.config import ViewConfig
from splattalk.viewer.server import run as serve


def run(cmd: ViewConfig) -> int:
    driver = None
    if cmd.drive is not None:

        def driver(avatar, base, log):
            return view_drive(cmd.drive, cmd.drive_cache, avatar, base, log, cmd.drive_mouth_gain)

    return serve(cmd, driver, mirror_factory)
