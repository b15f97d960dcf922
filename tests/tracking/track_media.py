"""Small test videos for the tracker, made on the fly from the embedded sample (PyAV, cv2, ffmpeg)."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from splattalk.assets import data_path

SAMPLE = data_path("sample", "sample.mp4")
SAMPLE_GT = data_path("sample", "sample_gt.npz")


def sample_frames(count: int, start: int = 0) -> list[np.ndarray]:
    """The first ``count`` RGB frames of the sample video (from ``start``)."""
    import av

    frames = []
    with av.open(str(SAMPLE)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= start:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return frames


def write_video(path: Path, frames, fps: float = 25, times: list[float] | None = None, codec: str = "libx264") -> Path:
    """Encode RGB frames; ``times`` (seconds) gives each frame its own timestamp (variable frame rate)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if times is not None:
                frame.pts = int(round(times[i] * 1000))
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def with_rotation(src: Path, dst: Path, degrees: int) -> Path:
    """Copy ``src`` adding a display-matrix rotation (as phones record portrait video).

    ``degrees`` is clockwise, as the legacy ``rotate`` tag that phones wrote; current ffmpeg
    (the one imageio-ffmpeg bundles) ignores that tag and takes ``-display_rotation``, which
    is counter-clockwise.
    """
    subprocess.run(
        [
            ffmpeg(),
            "-loglevel",
            "error",
            "-y",
            "-display_rotation:v:0",
            str(-degrees),
            "-i",
            str(src),
            "-c",
            "copy",
            str(dst),
        ],
        check=True,
    )
    return dst


def ffmpeg() -> str:
    """The ffmpeg that a user has: the one imageio-ffmpeg (a dependency) bundles, not a system one."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_decode(path: Path, count: int, folder: Path) -> list[np.ndarray]:
    """The first frames as ffmpeg itself shows them (autorotated): the oracle for our decoder."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [ffmpeg(), "-loglevel", "error", "-y", "-i", str(path), "-frames:v", str(count), str(folder / "%03d.png")],
        check=True,
    )
    return [cv2.imread(str(p))[:, :, ::-1] for p in sorted(folder.glob("*.png"))]


def paste(
    canvas_size: tuple[int, int], image: np.ndarray, size: int, x: int, y: int, canvas: np.ndarray | None = None
) -> np.ndarray:
    """``image`` resized to ``size``² pasted at (x, y) on a plain canvas (h, w)."""
    import cv2

    if canvas is None:
        canvas = np.full((*canvas_size, 3), 190, np.uint8)
    canvas[y : y + size, x : x + size] = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return canvas
