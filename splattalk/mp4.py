"""Writing mp4 files: H.264 video with optional AAC audio, through PyAV (its wheel bundles FFmpeg with libx264).

One writer for every mp4 splattalk makes (exports, the viewer's download, the tracker's overlay).
PyAV is imported inside the functions: importing this module must stay cheap for ``splattalk --help``.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from splattalk.atomic import atomic_path


def write_mp4(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    crf: int = 20,
    preset: str = "veryfast",
    threads: int | None = None,
    metadata: dict[str, str] | None = None,
) -> int:
    """Encode frames ([H, W, 3] uint8 RGB, even sizes) and optional mono float audio [S] into ``path`` atomically.

    The audio is trimmed or zero-padded to the video's duration so the two
    streams end together. ``threads=1`` makes the bytes identical from run to run;
    ``metadata`` goes into the container (e.g. ``comment``). Returns the number of frames written.
    """
    import av

    count = 0
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            container.metadata.update(metadata or {})
            video = None
            for frame in frames:
                if video is None:
                    h, w = frame.shape[:2]
                    video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                    video.width, video.height = w, h
                    video.pix_fmt = "yuv420p"
                    video.options = {
                        "crf": str(crf),
                        "preset": preset,
                        "movflags": "+faststart",
                        **({"threads": str(threads)} if threads else {}),
                    }
                    audio_stream = None
                    if audio is not None:
                        audio_stream = container.add_stream("aac", rate=sample_rate)
                        audio_stream.layout = "mono"
                for packet in video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
                count += 1
            if video is None:
                raise ValueError("no frames to write")
            for packet in video.encode():
                container.mux(packet)
            if audio_stream is not None:
                n = int(round(count / fps * sample_rate))
                samples = np.zeros(n, np.float32)
                samples[: min(n, len(audio))] = np.asarray(audio, np.float32)[:n]
                _encode_audio(container, audio_stream, samples, sample_rate)
    return count


def _encode_audio(container, stream, samples: np.ndarray, sample_rate: int) -> None:
    import av

    chunk = 1024  # AAC frame size
    pts = 0
    for start in range(0, len(samples), chunk):
        part = samples[start : start + chunk]
        frame = av.AudioFrame.from_ndarray(part[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = pts
        frame.time_base = Fraction(1, sample_rate)
        pts += len(part)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def probe(path: str | Path) -> dict:
    """Streams of a media file: {"video": (frames, duration_s, w, h) | None, "audio": (duration_s, rate) | None}."""
    import av

    out = {"video": None, "audio": None}
    with av.open(str(path)) as c:
        for s in c.streams:
            dur = float(s.duration * s.time_base) if s.duration else None
            if s.type == "video":
                out["video"] = (s.frames, dur, s.codec_context.width, s.codec_context.height)
            elif s.type == "audio":
                out["audio"] = (dur, s.codec_context.sample_rate)
    return out
