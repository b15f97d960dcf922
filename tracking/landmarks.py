"""mediapipe face landmarks (478 with iris), one face followed through the video.

mediapipe's face mesh finds faces down to about 1/6 of the frame width. To track
smaller faces (and to give every face the same working resolution), each frame
is processed on a square region around the face found in the previous frame,
resized to ``ROI_SIZE``; the full frame is searched only when the face is lost,
first with the face mesh (which also counts the faces: the largest is taken, or
the one where the tracked face was), then with mediapipe's full-range face
detector, which finds faces down to ~60 px. Everything runs offline on the
models the mediapipe wheel ships.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from splattalk.head.model import NUM_MEDIAPIPE_LANDMARKS
from splattalk.tracking.crop import warp_square

ROI_SIZE = 384
"""Side of the face region handed to the face mesh (it works internally at 192–256 px)."""
ROI_SCALE = 2.2
"""Region side as a multiple of the face size."""
SAME_FACE_SIZE = 1.5
"""A face found again elsewhere after the tracked one was lost is taken only if its size is within this
factor of the tracked face's last size; otherwise it is another person (the tracked one may come back)."""


@dataclass
class Detections:
    """Landmarks of the tracked face in source pixels; ``found`` False where no face was seen."""

    points: np.ndarray  # [T, 478, 3] x, y in pixels (pixel centres at +0.5), z relative depth in pixels
    found: np.ndarray  # [T] bool
    num_faces: np.ndarray  # [T] faces seen when the full frame was searched (-1: not searched)
    notes: list[str] = field(default_factory=list)

    def face_widths(self) -> np.ndarray:
        """Width of the landmark box [T] in pixels (nan where not found)."""
        xs = self.points[..., 0]
        width = xs.max(1) - xs.min(1)
        return np.where(self.found, width, np.nan)


def _box(points: np.ndarray) -> tuple[float, float, float]:
    """Centre x, centre y and size (longer side) of a landmark set [N, 2+]."""
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    centre = (lo + hi) / 2
    return float(centre[0]), float(centre[1]), float((hi - lo).max())


def _crop(image: np.ndarray, cx: float, cy: float, side: float, size: int) -> tuple[np.ndarray, float, float, float]:
    """Square region of ``image`` centred at (cx, cy) resized to ``size`` (zero padding outside)."""
    scale = size / side
    x0, y0 = cx - side / 2, cy - side / 2
    return warp_square(image, x0, y0, scale, size, border="constant"), x0, y0, scale


class FaceTracker:
    """Stateful per-video landmark tracker (mediapipe graphs + the previous face region)."""

    def __init__(self, max_faces: int = 4, static: bool = False):
        import mediapipe as mp  # lazy: mediapipe is slow to import; only detection needs it

        solutions = mp.solutions
        self._full = solutions.face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self._roi = solutions.face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self._detector = solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
        self._previous: tuple[float, float, float] | None = None  # tracked face box
        self._last_seen: tuple[float, float, float] | None = None

    def close(self) -> None:
        for graph in (self._full, self._roi, self._detector):
            graph.close()

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray | None, int]:
        """Landmarks [478, 3] of the tracked face (or None) and the face count if the full frame was searched
        (else -1)."""
        if self._previous is not None:
            points = self._in_region(image, self._previous)
            if points is not None:
                self._last_seen = _box(points)
                if _moved(self._previous, self._last_seen):
                    self._previous = self._last_seen
                return points, -1
        points, count = self._search(image)
        self._previous = _box(points) if points is not None else None
        if points is not None:
            self._last_seen = self._previous
        return points, count

    def _in_region(self, image: np.ndarray, box: tuple[float, float, float]) -> np.ndarray | None:
        cx, cy, size = box
        crop, x0, y0, scale = _crop(image, cx, cy, ROI_SCALE * size, ROI_SIZE)
        result = self._roi.process(crop)
        if not result.multi_face_landmarks:
            return None
        points = _to_pixels(result.multi_face_landmarks[0], ROI_SIZE, ROI_SIZE)
        points[:, :2] = points[:, :2] / scale + (x0, y0)
        points[:, 2] /= scale
        return points

    def _search(self, image: np.ndarray) -> tuple[np.ndarray | None, int]:
        height, width = image.shape[:2]
        result = self._full.process(image)
        faces = [_to_pixels(f, width, height) for f in (result.multi_face_landmarks or [])]
        if faces:
            return self._choose(faces), len(faces)
        # small face: the full-range detector, then the mesh on the region it found
        detections = self._detector.process(image).detections or []
        boxes = []
        for det in detections:
            rel = det.location_data.relative_bounding_box
            boxes.append(
                (
                    (rel.xmin + rel.width / 2) * width,
                    (rel.ymin + rel.height / 2) * height,
                    max(rel.width * width, rel.height * height),
                )
            )
        if not boxes:
            return None, 0
        box = self._choose_box(boxes)
        return (self._in_region(image, box) if box is not None else None), len(boxes)

    def _choose(self, faces: list[np.ndarray]) -> np.ndarray | None:
        boxes = [_box(f) for f in faces]
        box = self._choose_box(boxes)
        return faces[boxes.index(box)] if box is not None else None

    def _choose_box(self, boxes: list[tuple[float, float, float]]) -> tuple[float, float, float] | None:
        """The face where the tracked one was last seen (if one overlaps it), else the largest of those the
        tracked face's size, or the largest of all before any face was tracked. None: only other faces
        (another person while the tracked one is out of the frame), which are not taken."""
        if self._last_seen is None:
            return max(boxes, key=lambda b: b[2])
        lx, ly, ls = self._last_seen
        near = [b for b in boxes if np.hypot(b[0] - lx, b[1] - ly) < 0.5 * ls and 0.5 < b[2] / ls < 2]
        if near:
            return min(near, key=lambda b: np.hypot(b[0] - lx, b[1] - ly))
        alike = [b for b in boxes if 1 / SAME_FACE_SIZE < b[2] / ls < SAME_FACE_SIZE]
        return max(alike, key=lambda b: b[2]) if alike else None


def _moved(region: tuple[float, float, float], face: tuple[float, float, float], tolerance: float = 0.08) -> bool:
    """Whether the face left the region's comfort zone. The region only follows then: a region that
    moved every frame would resample the face every frame and add jitter to the landmarks."""
    (rx, ry, rs), (fx, fy, fs) = region, face
    return max(abs(fx - rx), abs(fy - ry)) > tolerance * rs or abs(np.log(fs / rs)) > tolerance


def _to_pixels(face, width: int, height: int) -> np.ndarray:
    """mediapipe's normalised landmarks → [478, 3] pixels (z in the same scale as x)."""
    points = np.array([(p.x * width, p.y * height, p.z * width) for p in face.landmark], dtype=np.float64)
    if len(points) != NUM_MEDIAPIPE_LANDMARKS:
        raise RuntimeError(
            f"mediapipe returned {len(points)} landmarks, expected {NUM_MEDIAPIPE_LANDMARKS} (refine_landmarks on)"
        )
    return points


def detect(
    frames, num_frames: int | None = None, max_faces: int = 4, static: bool = False, progress: bool = True
) -> Detections:
    """Run the tracker over ``frames`` (an iterable of (index, rgb)); returns :class:`Detections`."""
    tracker = FaceTracker(max_faces=max_faces, static=static)
    points, found, counts = [], [], []
    try:
        for _, image in tqdm(frames, total=num_frames, desc="landmarks", unit="frame", disable=not progress):
            p, count = tracker(image)
            points.append(p if p is not None else np.full((NUM_MEDIAPIPE_LANDMARKS, 3), np.nan))
            found.append(p is not None)
            counts.append(count)
    finally:
        tracker.close()
    return Detections(
        np.array(points).reshape(-1, NUM_MEDIAPIPE_LANDMARKS, 3), np.array(found, bool), np.array(counts, int)
    )
