"""Reading the input: a video file (any container/codec FFmpeg reads), a folder of images, or one image.

Frames come out upright (the phone's display-matrix rotation applied, as players
do) and at a constant output rate: each output time k/fps takes the source
frame whose timestamp is nearest, so variable-frame-rate phone videos keep
their real timing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splattalk.errors import SplattalkError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Source:
    """What ``open_source`` found: enough to plan the run and to key its cache."""

    path: Path
    kind: str
    """"video", "images" or "image"."""
    width: int
    """Upright (displayed) width in pixels."""
    height: int
    rotation: int
    """Display rotation applied to the decoded frames, degrees counter-clockwise (0, 90, 180, 270)."""
    duration: float | None
    """Seconds, when the container says."""
    images: tuple[Path, ...] = ()

    def fingerprint(self) -> dict:
        """Identifies the input's content cheaply (path, size, mtime), for resuming a run."""
        files = self.images if self.images else (self.path,)
        stats = [(str(f.resolve()), f.stat().st_size, int(f.stat().st_mtime)) for f in files]
        return {
            "path": str(self.path.resolve()),
            "kind": self.kind,
            "files": len(stats),
            "stat": stats[:3] + stats[-3:],
        }


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def open_source(path: str | Path) -> Source:
    """Check that ``path`` is a readable video / image folder / image; raise :class:`SplattalkError` otherwise."""
    path = Path(path)
    if not path.exists():
        raise SplattalkError(f"input not found: {path}. Give a video file, a folder of images or an image.")
    if path.is_dir():
        images = tuple(sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key))
        if not images:
            raise SplattalkError(f"the folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        first = _read_image(images[0])
        return Source(path, "images", first.shape[1], first.shape[0], 0, None, images)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = _read_image(path)
        return Source(path, "image", image.shape[1], image.shape[0], 0, None, (path,))
    return _probe_video(path)


def _read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # applies the EXIF orientation
    if image is None:
        raise SplattalkError(f"cannot read the image {path}: not an image file, or corrupt.")
    return np.ascontiguousarray(image[:, :, ::-1])


def _open_container(path: Path):
    import av

    try:
        container = av.open(str(path))
    except av.error.EOFError:
        raise SplattalkError(
            f"{path} holds no video data (an empty or unfinished recording?). Give a video of the face."
        ) from None
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise SplattalkError(
            f"cannot read {path} as a video ({err.__class__.__name__}: {err}). Is it really a video file? A "
            "recording that was cut short or a partial copy often lacks its index (an .mp4's 'moov' box): "
            "copy or export it again."
        ) from None
    if not container.streams.video:
        container.close()
        raise SplattalkError(
            f"{path} holds no video frames (its container has no video stream; audio only, or an "
            f"empty recording?). Give a video of the face."
        )
    return container


def _probe_video(path: Path) -> Source:
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frame = None
        try:
            frame = next(container.decode(stream), None)
        except Exception as err:  # noqa: BLE001 - FFmpeg raises many kinds; all mean the same to the user
            raise SplattalkError(f"cannot decode the video in {path}: {err}") from None
        if frame is None:
            raise SplattalkError(f"{path} holds no video frames. Record the video again or check the export.")
        rotation = _rotation(frame)
        width, height = (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration
            else (container.duration / 1e6 if container.duration else None)
        )
        return Source(path, "video", width, height, rotation, duration)
    finally:
        container.close()


def _rotation(frame) -> int:
    """Display rotation of a decoded frame, snapped to a multiple of 90° (counter-clockwise)."""
    value = getattr(frame, "rotation", 0) or 0
    return int(round(value / 90.0)) % 4 * 90


MAX_WORK_SIDE = 1920
"""Frames are decoded at most this many pixels along their longer side (4K phone video is halved at decode):
the face region the tracker and the 512² output need fits well inside it, and a 4K frame in RGB is 25 MB."""
MAX_BAD_PACKETS = 200
"""Reading a damaged video stops after this many undecodable packets in a row."""


def work_scale(source: Source, max_side: int | None = None) -> float:
    """The factor (≤ 1) by which frames of ``source`` are downscaled at decode (``MAX_WORK_SIDE`` by default)."""
    return min(1.0, (max_side or MAX_WORK_SIDE) / max(source.width, source.height))


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """``width``×``height`` times ``scale``, rounded to whole pixels (at least 1)."""
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def iter_frames(
    source: Source, fps: float, max_seconds: float | None = None, scale: float = 1.0, warnings: list | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, rgb [H, W, 3] uint8)`` at ``fps``, upright.

    ``scale`` < 1 downscales every frame as it is decoded (by FFmpeg's scaler, before a
    full-size RGB picture exists) to ``scaled_size(source.width, source.height, scale)``.
    Only one or two frames are held at a time, whatever the resolution. What was wrong with a
    damaged video (skipped packets, a cut-short file) is appended to ``warnings`` once the video
    is read to its end, or printed when ``warnings`` is None.
    """
    size = scaled_size(source.width, source.height, scale) if scale < 1.0 else None
    if source.kind != "video":
        limit = (
            len(source.images)
            if max_seconds is None
            else min(len(source.images), int(np.floor(max_seconds * fps)) or 1)
        )
        for index, image_path in enumerate(source.images[:limit]):
            image = _read_image(image_path)
            if image.shape[:2] != (source.height, source.width):
                raise SplattalkError(
                    f"{image_path} is {image.shape[1]}x{image.shape[0]} but the first image is "
                    f"{source.width}x{source.height}; all images of a folder must have one size."
                )
            if size is not None:
                import cv2

                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            yield index, image
        return
    yield from _resample(_decode(source, size, warnings), fps, max_seconds)


def _decode(
    source: Source, size: tuple[int, int] | None = None, warnings: list | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds since the first frame, upright rgb) for every decoded frame, in presentation order.

    ``size``: upright (width, height) each frame is scaled to as it is converted to RGB. Damaged
    packets are skipped as players skip them (the picture before them is held) and reported once
    at the end; frames stamped far past the container's duration (damaged timestamps) are dropped.
    """
    import av

    container = _open_container(source.path)
    count, bad, bad_run, first_bad, late, last = 0, 0, 0, None, 0, 0.0
    said = [] if warnings is None else warnings
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        limit = source.duration + 1.0 if source.duration else None
        start = None
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:  # a damaged packet: skipped, as players do
                bad += 1
                bad_run += 1
                first_bad = count if first_bad is None else first_bad
                if bad_run > MAX_BAD_PACKETS:
                    break
                continue
            bad_run = 0 if frames else bad_run
            for frame in frames:
                time = frame.time if frame.time is not None else count / rate
                start = time if start is None else start
                if limit is not None and time - start > limit:
                    late += 1
                    continue
                k = _rotation(frame) // 90
                if size is None:
                    image = frame.to_ndarray(format="rgb24")
                else:  # the stored picture is sideways when the rotation is a quarter turn
                    width, height = (size[1], size[0]) if k % 2 else size
                    image = frame.to_ndarray(format="rgb24", width=width, height=height)
                last = max(last, time - start)
                yield time - start, np.ascontiguousarray(np.rot90(image, k)) if k else image
                count += 1
    except (av.error.FFmpegError, EOFError) as err:  # the container itself is unreadable from here on
        if count == 0:
            raise SplattalkError(f"cannot decode the video in {source.path}: {err}") from None
        said.append(f"{source.path} could not be read past frame {count} ({err}); the frames before are used")
    finally:
        container.close()
    if count == 0:
        raise SplattalkError(
            f"cannot decode any frame of {source.path}: its video data is damaged (a truncated or corrupt "
            "file?). Copy or export the video again."
        )
    if bad:
        said.append(
            f"{source.path} is damaged: {bad} video packet(s) could not be decoded (the first near source frame "
            f"{first_bad}); the picture before each is held there, as players do"
        )
    if late:
        said.append(f"{source.path}: {late} frame(s) stamped past the video's end were dropped (damaged timestamps)")
    if source.duration and last + 1.0 < source.duration - 1.0:
        said.append(
            f"{source.path} says it lasts {source.duration:.1f} s but its video ends at {last + 1 / rate:.1f} s "
            "(a truncated file or partial copy?); the frames that are there are used"
        )
    if warnings is None:
        for line in said:
            print(f"warning: {line}")


def _resample(
    frames: Iterator[tuple[float, np.ndarray]], fps: float, max_seconds: float | None
) -> Iterator[tuple[int, np.ndarray]]:
    """Nearest-timestamp resampling to ``fps``: output k shows the source frame nearest to time k/fps."""
    index = 0
    previous: tuple[float, np.ndarray] | None = None
    step = None
    for time, image in frames:
        if previous is not None:
            step = time - previous[0]
            if step <= 0:  # duplicate / out-of-order timestamp: keep the newer picture
                previous = (previous[0], image)
                continue
            midpoint = 0.5 * (previous[0] + time)
            while index / fps < midpoint - 1e-9:
                if max_seconds is not None and index / fps >= max_seconds:
                    return
                yield index, previous[1]
                index += 1
        previous = (time, image)
    if previous is None:
        return
    # the last frame lasts as long as the one before it (or one output frame)
    end = previous[0] + (step if step else 1.0 / fps) / 2
    while index / fps < end - 1e-9 or index == 0:
        if max_seconds is not None and index / fps >= max_seconds:
            return
        yield index, previous[1]
        index += 1
