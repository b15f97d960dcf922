"""``splattalk view``: the viser server, one :class:`~splattalk.viewer.session.Session` per browser tab.

The server loads what tabs share once (avatar, talk model, sample clips,
styles), then for every connecting tab builds its own GUI and session and, on
disconnect, stops that session's threads and deletes its temp folder. All
files a session writes live under one private temp root (removed on exit).
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import viser

from splattalk import assets
from splattalk.avatar.io import load_avatar
from splattalk.errors import SplattalkError
from splattalk.head.params import HeadParams
from splattalk.models import STYLES_DIR, check_head_model, default_threads, for_run, resolve_model, run_style
from splattalk.run import RunLayout, Tracks
from splattalk.talk.style import load_style_clip
from splattalk.viewer.config import ViewConfig
from splattalk.viewer.gui import ViserView
from splattalk.viewer.loudness import LoudnessStream, mouth_open_channel
from splattalk.viewer.session import Limits, Resources, Session
from splattalk.viewer.speech_text import find_engine
from splattalk.viewer.talking import talk_streams

DEFAULT_AVATAR = assets.data_path("default_avatar.safetensors")
"""The embedded default avatar (``scripts/make_default_avatar.py``), shown when no RUN is given."""


TRACKED_STYLE = "this person (tracked)"
"""The style list's name for the run's own tracked motion (:func:`splattalk.models.run_style`)."""


def load_resources(cmd: ViewConfig, log=print, driver=None, mirror=None):
    """Everything the sessions share, loaded once.

    ``driver(avatar, base, log)`` makes the clip ``--drive`` plays (audio, motion, extras, label): the application's
    ``splattalk view`` passes :func:`splattalk.reenact.view_drive`, which tracks the driving video — the viewer itself
    knows nothing of tracking. ``mirror(avatar, base)`` likewise makes the factory of "Mirror me"'s per-tab
    trackers (:class:`splattalk.mirror.Mirror`); without it the button says it is not available.
    """
    base = None
    if cmd.run is None:
        avatar = load_avatar(DEFAULT_AVATAR)
        log(f"avatar: the embedded default ({avatar.gaussians.num} Gaussians)")
    else:
        run = Path(cmd.run)
        if not run.is_dir():
            raise SplattalkError(
                f"run folder {run} not found: pass a folder made by `splattalk track` / `splattalk fit`"
            )
        layout = RunLayout(run)
        avatar = load_avatar(layout.avatar)
        base = HeadParams(**Tracks.load(layout.tracks).per_frame()) if layout.tracks.is_file() else None
        log(f"avatar: {run} ({avatar.gaussians.num} Gaussians, head model {avatar.model_id})")
    motion_dim = avatar.head.num_expr + 6

    if cmd.loudness_only:
        model = None
    else:
        model = for_run(resolve_model(cmd.checkpoint, required=False, log=log), cmd.run, cmd.checkpoint, log=log)
        if model is not None:
            log(f"motion: talk model {model.cfg.name} ({model.cfg.head_model})")
    styles: dict[str, np.ndarray | None] = {"model default": None}
    if model is not None:
        check_head_model(model, avatar.model_id, motion_dim)
        threads = default_threads(model, cmd.threads)
        if threads is not None:
            torch.set_num_threads(threads)
        own = run_style(cmd.run, model, log) if (cmd.run is not None and cmd.run_style) else None
        if own is not None:  # offered first, so every tab starts in it
            styles = {TRACKED_STYLE: own, **styles}
        styles.update(_styles(model.cfg, log))
        streams = talk_streams(model)
    else:
        channel = mouth_open_channel(avatar.head.expr_names)
        streams = lambda style: LoudnessStream(motion_dim, channel)  # noqa: E731
        log("motion: loudness only (the jaw follows the speech's loudness; no talk model)")
        torch.set_num_threads(1)

    samples = {p.name: p for p in sorted(assets.data_path("speech").glob("*.wav"))}
    limits = Limits(
        int(cmd.max_upload_mb * 2**20), cmd.max_audio_minutes * 60.0, cmd.max_text_chars, cmd.max_export_seconds
    )
    drive = None
    if cmd.drive is not None:  # reenactment
        if driver is None:
            raise SplattalkError("--drive needs the `splattalk view` command, which tracks the driving video")
        drive = driver(avatar, base, log)
    return Resources(
        avatar=avatar,
        streams=streams,
        base=base,
        samples=samples,
        styles=styles,
        tts_engine=find_engine(),
        talk_model=model,
        scene_scale=cmd.scene_scale,
        latency=cmd.latency_ms / 1000.0,
        export_resolution=cmd.export_resolution,
        limits=limits,
        drive=drive,
        mirror=mirror(avatar, base) if mirror is not None else None,
        light_stream=cmd.light_stream,
        stream_tolerance_m=cmd.stream_tolerance_mm / 1000.0,
    )


def _styles(cfg, log) -> dict:
    found = {}
    for path in sorted(STYLES_DIR.glob("*.npz")) if STYLES_DIR.is_dir() else []:
        try:
            found[path.stem] = load_style_clip(path, cfg.motion_dim, cfg.style_frames)
        except SplattalkError as err:
            log(f"warning: style clip skipped: {err}", file=sys.stderr)
    return found


class ViewServer:
    """A running viewer: ``ViewServer(cmd).start()`` … ``.stop()`` (``run`` blocks on it)."""

    def __init__(self, cmd: ViewConfig, resources=None, log=print):
        self.cmd = cmd
        self.log = log
        self.resources = resources if resources is not None else load_resources(cmd, log)
        self.sessions: dict[int, tuple[object, object]] = {}
        self._gone: set[int] = set()
        """Clients that disconnected (a connect callback still building their page must not start a session)."""
        self.lock = threading.Lock()
        self.tmp_root = Path(tempfile.mkdtemp(prefix="splattalk-view-"))
        self.server = None

    def start(self) -> ViewServer:
        # A tab's playback thread may send one last frame between the socket closing and the disconnect
        # callback stopping it; viser warns about each such message. The session is being closed anyway.
        warnings.filterwarnings("ignore", message=r"Queued a \w+ on a closed connection")

        self.server = viser.ViserServer(host=self.cmd.host, port=self.cmd.port, verbose=False)
        self.server.gui.configure_theme(show_logo=False, dark_mode=False)
        self.server.scene.set_up_direction("+y")
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)
        return self

    @property
    def port(self) -> int:
        return self.server.get_port()

    def _connect(self, client) -> None:
        view = ViserView(client, self.resources)
        session = Session(self.resources, view, self.tmp_root / f"client-{client.client_id}")
        view.bind(session)
        with self.lock:
            gone = client.client_id in self._gone
            if not gone:
                self.sessions[client.client_id] = (session, view)
        if gone:
            view.close()
            session.close()
        else:
            session.start()

    def _disconnect(self, client) -> None:
        with self.lock:
            self._gone.add(client.client_id)
            entry = self.sessions.pop(client.client_id, None)
        if entry is not None:
            session, view = entry
            view.close()
            threading.Thread(target=session.close, name="viewer-close", daemon=True).start()

    def stop(self) -> None:
        with self.lock:
            entries = list(self.sessions.values())
            self.sessions.clear()
        for session, view in entries:
            view.close()
            session.close()
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.tmp_root, ignore_errors=True)


def run(cmd: ViewConfig, driver=None, mirror=None) -> int:
    """Serve until Ctrl+C (``driver``, ``mirror``: see :func:`load_resources`)."""

    def log(*args, **kw):
        print(*args, **kw, flush=True)

    def terminate(signum, frame):  # a service manager's stop: clean up like Ctrl+C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    server = ViewServer(cmd, resources=load_resources(cmd, log, driver, mirror), log=log).start()
    host = "localhost" if cmd.host in ("127.0.0.1", "localhost") else cmd.host
    log(f"splattalk viewer: http://{host}:{server.port}  (Ctrl+C to stop)")
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()
