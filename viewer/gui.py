"""The page of one browser tab: viser GUI controls and the splat node, wired to a :class:`Session`.

:class:`ViserView` implements the session's ``View`` on a viser ``ClientHandle``
(everything per client: ``client.gui``, ``client.scene``), so tabs never see
each other's state.
"""

from __future__ import annotations

import html
import time

import numpy as np

from splattalk.avatar.framing import head_target
from splattalk.talk.config import FPS
from splattalk.viewer import uploads
from splattalk.viewer.audio_sync import CLOCK_LABEL, READOUT_ID, player_html, state_html
from splattalk.viewer.live_page import LiveControls
from splattalk.viewer.live_video_page import MirrorControls
from splattalk.viewer.playback import Desired
from splattalk.viewer.session import Resources, Session
from splattalk.viewer.splats import SplatPoser, triu_to_full
from splattalk.viewer.stream import stream_groups

NO_SAMPLE = "(choose a sample)"
TIMELINE_HZ = 4.0
"""How often the frame slider follows playback (more would fight the user's dragging)."""
CAMERA_FOV_DEG = 30.0
COLORS = {"info": "blue", "warning": "yellow", "error": "red", "success": "green"}


class ViserView:
    """Builds one client's GUI and shows what its session sends."""

    def __init__(self, client, resources: Resources):
        self.client = client
        self.res = resources
        self.session: Session | None = None
        self._closed = False
        self._timeline_at = 0.0
        self._timeline_total = -1
        self._readout = ""
        self._build_scene()
        self._build_gui()

    # ------------------------------------------------------------------ building
    def _build_scene(self) -> None:
        poser = SplatPoser(self.res.avatar, self.res.base, self.res.scene_scale)
        rest = np.zeros(poser.motion_dim, np.float32)
        buffer = poser.buffer(rest)
        centers = buffer[:, 0:3].view(np.float32)
        triu = buffer[:, 4:7].copy().view(np.float16).astype(np.float32)
        if self.res.light_stream:  # the head as a frame node, its Gaussians in groups (viewer/stream.py)
            self.head = self.client.scene.add_frame("/avatar", show_axes=False)
            self.groups = [
                self.client.scene.add_gaussian_splats(
                    f"/avatar/g{k}",
                    centers=centers[idx],
                    covariances=triu_to_full(triu[idx]),
                    rgbs=poser.rgbs[idx],
                    opacities=poser.opacities[idx],
                )
                for k, idx in enumerate(stream_groups(poser))
            ]
        else:
            self.splats = self.client.scene.add_gaussian_splats(
                "/avatar", centers=centers, covariances=triu_to_full(triu), rgbs=poser.rgbs, opacities=poser.opacities
            )
        target, radius = head_target(poser.rest_vertices())
        s = self.res.scene_scale
        self.target = target * s
        """Home camera: where it looks and where it sits (scene units), vertical field of view CAMERA_FOV_DEG."""
        distance = (
            radius * s / np.tan(np.radians(CAMERA_FOV_DEG) / 2) / 0.55
        )  # skull to chin fill ~55 % of the height: room to move
        self.eye = self.target + np.array([0.0, 0.05, 1.0]) * distance
        self.reset_camera()

    def _build_gui(self) -> None:
        gui = self.client.gui
        with gui.add_folder("Speech"):
            self.upload = gui.add_upload_button(
                "Upload speech", mime_type=uploads.MIME_ACCEPT, icon="upload", hint="wav, mp3, m4a, ogg, flac"
            )
            self.sample = gui.add_dropdown("Sample clip", [NO_SAMPLE, *self.res.samples], initial_value=NO_SAMPLE)
            self.text = self.speak = None
            if self.res.tts_engine:
                self.text = gui.add_text(
                    "Text",
                    initial_value="",
                    hint=f"spoken by {self.res.tts_engine} (at most {self.res.limits.max_text_chars} characters)",
                )
                self.speak = gui.add_button("Speak text", icon="message")
            self.audio_html = gui.add_html(player_html(0, None, ""))
            self.live = LiveControls(gui)
            self.mirror = MirrorControls(gui)
        with gui.add_folder("Playback"):
            self.play_button = gui.add_button("Play / pause", icon="player-play")
            self.loop = gui.add_checkbox("Loop", initial_value=False)
            self.timeline = gui.add_slider("Frame", min=0, max=1, step=1, initial_value=0)
            self.readout = gui.add_html(self._readout_html(None, 0, 0, 0.0, "idle"))
        with gui.add_folder("Motion"):
            self.style = gui.add_dropdown("Style", list(self.res.styles), initial_value=next(iter(self.res.styles)))
            self.expr_scale = gui.add_slider("Expression", min=0.0, max=2.0, step=0.05, initial_value=1.0)
            self.head_scale = gui.add_slider("Head motion", min=0.0, max=2.0, step=0.05, initial_value=1.0)
        with gui.add_folder("View"):
            self.reset = gui.add_button("Reset camera", icon="focus-centered")
            self.background = gui.add_rgb("Background", initial_value=(255, 255, 255))
            self.export_button = gui.add_button(
                "Export mp4",
                icon="download",
                hint=f"renders the current clip at {self.res.export_resolution}² on the server",
            )
        self.state_html = gui.add_html("")
        # Written by the page 20× a second with its audio clock; hidden by the page's controller. It lives
        # in a panel of its own because each panel gets its own (throttled, newest-wins) message sender:
        # beside the controls, a report could swallow a control's last update.
        self.clock_panel = gui.add_panel()
        with self.clock_panel.add_tab("sync"):
            self.clock_input = gui.add_text(CLOCK_LABEL, initial_value="")
        self.clock_panel.float()
        self.live.add_input_panel()
        self.mirror.add_input_panels()

    def bind(self, session: Session) -> None:
        """Connect the controls to ``session`` (user events only: our own updates have no client)."""
        self.session = session
        uploads.install_size_guard(self.client, self.res.limits.max_upload_bytes, session.upload_refused)

        def user(handler):
            def callback(event) -> None:
                if event.client is not None and not self._closed:
                    handler(event)

            return callback

        self.upload.on_upload(user(lambda e: session.on_upload(e.target.value.name, e.target.value.content)))
        self.sample.on_update(user(lambda e: self._use_sample(e.target.value)))
        if self.speak is not None:
            self.speak.on_click(user(lambda e: session.say(self.text.value)))
        self.play_button.on_click(user(lambda e: session.toggle()))
        self.loop.on_update(user(lambda e: session.set_loop(e.target.value)))
        self.timeline.on_update(user(lambda e: session.seek_frame(int(e.target.value))))
        self.style.on_update(user(lambda e: session.set_style(e.target.value)))
        self.expr_scale.on_update(user(lambda e: session.set_expr_scale(e.target.value)))
        self.head_scale.on_update(user(lambda e: session.set_head_scale(e.target.value)))
        self.reset.on_click(user(lambda e: self.reset_camera()))
        self.background.on_update(
            user(lambda e: (self.set_background(e.target.value), session.set_background(e.target.value)))
        )
        self.export_button.on_click(user(lambda e: session.export()))
        self.clock_input.on_update(user(lambda e: session.clock_report(e.target.value)))
        self.live.talk.on_click(user(lambda e: session.talk_live()))
        self.live.stop.on_click(user(lambda e: session.live.stop()))
        self.live.on_message(user(lambda e: session.live.receive(e.target.value)))
        self.mirror.mirror.on_click(user(lambda e: session.mirror_me()))
        self.mirror.stop.on_click(user(lambda e: session.mirror.stop()))
        for handle in self.mirror.inputs:
            handle.on_update(user(lambda e: session.mirror.receive(e.target.value)))

    def close(self) -> None:
        self._closed = True

    def _use_sample(self, name: str) -> None:
        if name != NO_SAMPLE and self.session is not None:
            self.session.use_sample(name)
            self._safe(lambda: setattr(self.sample, "value", NO_SAMPLE))  # picking it again plays it again

    # ------------------------------------------------------------------ View
    def show_splats(self, buffer: np.ndarray) -> None:
        self._safe(lambda: setattr(self.splats, "buffer", buffer))

    def show_update(self, update) -> None:
        """A light-stream frame (``stream.FrameUpdate``): the head node's pose, the group nodes' transforms
        (rotation, position, per-axis scale: viser draws a splat node through all three), the groups resent."""

        def apply():
            with self.client.atomic():
                self.head.wxyz, self.head.position = update.wxyz, update.position
                for k, wxyz, position, scale in update.transforms:
                    group = self.groups[k]
                    group.wxyz, group.position, group.scale = wxyz, position, tuple(map(float, scale))
                for k, buffer in update.groups:
                    self.groups[k].buffer = buffer

        self._safe(apply)

    def set_audio(self, clip_id: int, data_url: str | None, label: str) -> None:
        self._safe(lambda: setattr(self.audio_html, "content", player_html(clip_id, data_url, label)))

    def set_audio_state(self, desired: Desired) -> None:
        d = desired
        self._safe(
            lambda: setattr(
                self.state_html, "content", state_html(d.seq, d.clip, d.playing, d.loop, d.seek_seq, d.seek)
            )
        )

    def set_readout(self, frame: int | None, total: int, ready: int, fps: float, state: str, lead: float = 0.0) -> None:
        content = self._readout_html(frame, total, ready, fps, state, lead)
        if content != self._readout:
            self._readout = content
            self._safe(lambda: setattr(self.readout, "content", content))
        now = time.monotonic()
        if total != self._timeline_total:
            self._timeline_total = total
            self._safe(lambda: setattr(self.timeline, "max", max(total - 1, 1)))
        if frame is not None and now - self._timeline_at > 1.0 / TIMELINE_HZ:
            self._timeline_at = now
            self._safe(lambda: setattr(self.timeline, "value", int(frame)))

    def notify(self, title: str, body: str, level: str = "info") -> None:
        auto = None if level == "error" else 6.0
        self._safe(
            lambda: self.client.add_notification(title, body, auto_close_seconds=auto, color=COLORS.get(level, "blue"))
        )

    def live_command(self, action: str) -> None:
        self._safe(lambda: self.live.command(action))

    def live_status(self, text: str, audio_ms: float | None) -> None:
        self._safe(lambda: self.live.status(text, audio_ms))

    def mirror_command(self, action: str) -> None:
        self._safe(lambda: self.mirror.command(action))

    def mirror_status(self, text: str, shown: tuple[int, float] | None) -> None:
        self._safe(lambda: self.mirror.status(text, shown))

    def offer_download(self, filename: str, content: bytes) -> None:
        self._safe(lambda: self.client.send_file_download(filename, content))
        self.notify("Export ready", f"{filename} ({len(content) / 1e6:.1f} MB) is being downloaded", "success")

    # ------------------------------------------------------------------ view controls
    def reset_camera(self) -> None:
        camera = self.client.camera
        camera.up_direction = (0.0, 1.0, 0.0)
        camera.position = tuple(self.eye)
        camera.look_at = tuple(self.target)
        camera.fov = np.radians(CAMERA_FOV_DEG)

    def set_background(self, rgb) -> None:
        image = np.zeros((8, 8, 3), np.uint8)
        image[:] = np.asarray(rgb, np.uint8)
        self._safe(lambda: self.client.scene.set_background_image(image, format="png"))

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _readout_html(frame: int | None, total: int, ready: int, fps: float, state: str, lead: float = 0.0) -> str:
        shown = "–" if frame is None else str(frame)
        time_s = "" if frame is None else f" · {frame / FPS:5.2f} s"
        gen = f" · generated {ready}/{total}" if 0 < total and ready < total else ""
        return (
            f'<div id="{READOUT_ID}" data-frame="{-1 if frame is None else int(frame)}" '
            f'data-state="{html.escape(state)}" '
            f'style="font-family:monospace;font-size:0.8em;margin:0 0.75em 0.5em">'
            f"frame {shown}/{max(total - 1, 0)}{time_s} · {fps:4.1f} fps · {html.escape(state)}{gen}"
            f'<span style="opacity:0.6"> · lead {1000 * lead:.0f} ms</span></div>'
        )

    def _safe(self, action) -> None:
        """Run a viser call unless the tab is gone (a removed handle raises; the session is closing anyway)."""
        if self._closed:
            return
        try:
            action()
        except RuntimeError:
            if not self._closed:
                raise
