"""The face region: mediapipe's own topology and its 3D landmarks on real photographs."""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IPD_M = 0.063
"""Mean adult inter-pupillary distance; sets the metric scale of the face."""

IRIS_CENTRES = (468, 473)  # subject's right, subject's left


def photo_paths() -> list[Path]:
    """Real photographs of faces that installed packages ship (public domain)."""
    import matplotlib
    import skimage

    return [
        Path(skimage.__file__).parent / "data" / "astronaut.png",
        Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg",
    ]


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(image[:, :, ::-1])


def face_triangles() -> np.ndarray:
    """mediapipe's face-mesh triangles [852, 3], rebuilt from its tesselation edge set.

    The edge set has 854 three-cycles; two of them (one per side of the nose) are
    not faces: all three of their edges are shared by more than two cycles.
    """
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    edges = {tuple(sorted(e)) for e in FACEMESH_TESSELATION}
    nbrs = collections.defaultdict(set)
    for a, b in edges:
        nbrs[a].add(b)
        nbrs[b].add(a)
    cycles = {tuple(sorted((a, b, c))) for a, b in edges for c in nbrs[a] & nbrs[b]}
    uses = collections.Counter(e for t in cycles for e in itertools.combinations(t, 2))
    faces = [t for t in cycles if not all(uses[e] > 2 for e in itertools.combinations(t, 2))]
    return np.array(sorted(faces), dtype=np.int64)


def landmarks_pixels(image: np.ndarray) -> np.ndarray | None:
    """mediapipe's 478 landmarks as [478, 3] pixels (x right, y down, z toward the scene, x-scaled)."""
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        result = mesh.process(image)
    if not result.multi_face_landmarks:
        return None
    h, w = image.shape[:2]
    pts = np.array([[p.x, p.y, p.z] for p in result.multi_face_landmarks[0].landmark])
    return pts * np.array([w, h, w])


def to_head_frame(pixels: np.ndarray) -> np.ndarray:
    """Pixels → head frame (x subject's left = image right, y up, z toward the camera)."""
    return pixels * np.array([1.0, -1.0, -1.0])


def similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama: src [N, 3] moved onto dst [N, 3] by rotation, uniform scale and translation."""
    return similarity_transform(src, dst)(src)


def mirror_map(points: np.ndarray) -> np.ndarray:
    """Index of each landmark's left/right mirror partner [478].

    The face-mesh topology is left/right symmetric, so the mirror is an
    orientation-reversing automorphism of its triangles: seeded with the two
    triangles on either side of the midline edge nose tip (1) – 4, it propagates
    across shared edges. The iris points are paired geometrically afterwards.
    """
    tris = face_triangles()
    by_edge = collections.defaultdict(list)
    for t in tris:
        for e in itertools.combinations(sorted(t), 2):
            by_edge[e].append(tuple(t))

    def third(t, a, b):
        return next(v for v in t if v != a and v != b)

    t0, t1 = by_edge[(1, 4)]
    mapping = {1: 1, 4: 4, third(t0, 1, 4): third(t1, 1, 4), third(t1, 1, 4): third(t0, 1, 4)}
    # A few quads are split along different diagonals on the two sides, so
    # propagation can disagree locally: every crossing votes, the majority wins.
    votes: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    queue = collections.deque([t0, t1])
    seen = {t0, t1}
    while queue:
        t = queue.popleft()
        for a, b in itertools.combinations(t, 2):
            ma, mb = mapping[a], mapping[b]
            here = [n for n in by_edge[tuple(sorted((a, b)))] if n != t]
            there = [n for n in by_edge[tuple(sorted((ma, mb)))] if set(n) != {ma, mb, mapping[third(t, a, b)]}]
            if not here or len(there) != 1:
                continue
            s = third(here[0], a, b)
            votes[s][third(there[0], ma, mb)] += 1
            mapping.setdefault(s, third(there[0], ma, mb))
            if here[0] not in seen:
                seen.add(here[0])
                queue.append(here[0])
    # Pair greedily by the votes cast in both directions, so the map is an involution.
    weight = collections.Counter()
    for v, counter in votes.items():
        for w, n in counter.items():
            weight[tuple(sorted((v, w)))] += n
    mapping = {v: v for v in (1, 4)}
    for (v, w), _ in weight.most_common():
        if v not in mapping and w not in mapping:
            mapping[v], mapping[w] = w, v
    perm = np.arange(len(points))
    for k, v in mapping.items():
        perm[k] = v
    if len(mapping) != 468 or not np.array_equal(perm[perm[:468]], np.arange(468)):
        raise RuntimeError("mirror map of the face mesh is incomplete")
    # irises: 468-472 and 473-477 swap; pair the ring points by mirrored geometry
    perm[468], perm[473] = 473, 468
    sym = _symmetric_frame(points[:468], perm[:468])
    flip = np.array([-1.0, 1.0, 1.0])
    frame = similarity_transform(points[:468], sym)
    iris = frame(points[468:478])
    right, left = iris[1:5], iris[6:10]
    for i in range(4):
        j = int(np.linalg.norm(left - right[i] * flip, axis=1).argmin())
        perm[469 + i], perm[474 + j] = 474 + j, 469 + i
    if not np.array_equal(perm[perm], np.arange(len(points))):
        raise RuntimeError("mirror map of the face landmarks is not an involution")
    return perm


def similarity_transform(src: np.ndarray, dst: np.ndarray):
    """The similarity (Umeyama) taking src [N, 3] to dst [N, 3], as a function of points."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    scale = (sig * np.diag(fix)).sum() / (a * a).sum()
    return lambda p: scale * (p - ms) @ rot.T + md


def _symmetric_frame(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Points moved into a frame where the mirror pairs are symmetric about x=0."""
    flip = np.array([-1.0, 1.0, 1.0])
    current = points - points.mean(0)
    for _ in range(6):
        aligned = similarity_align(current[mirror] * flip, current)
        current = 0.5 * (current + aligned)
    normal = current - current[mirror]
    normal = normal[np.linalg.norm(normal, axis=1) > 1e-6]
    normal = normal * np.sign(normal[:, :1])
    normal = normal.mean(0) / np.linalg.norm(normal.mean(0))
    rot = _rotation_between(normal, np.array([1.0, 0.0, 0.0]))
    mid = 0.5 * (current + current[mirror])
    return (current - mid.mean(0)) @ rot.T


@dataclass
class FaceEstimate:
    points: np.ndarray
    """[478, 3] symmetrized landmark positions, metres, head frame."""
    uv_photo: np.ndarray
    """[478, 2] landmark pixel positions in the texture photo (the first photograph)."""
    photo: np.ndarray
    """The texture photograph, RGB uint8."""
    mirror: np.ndarray
    """[478] mirror partner of each landmark."""


def _augmented_views(image: np.ndarray):
    """The photo and mildly rotated/scaled copies (and the inverse maps back to the photo's pixels)."""
    h, w = image.shape[:2]
    for angle, scale in ((0, 1.0), (-6, 1.0), (6, 1.0), (0, 1.3), (0, 0.8)):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        yield cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE), cv2.invertAffineTransform(m)


def estimate_face(paths: list[Path] | None = None) -> FaceEstimate:
    """Average mediapipe's 3D landmarks over photographs and augmentations, then symmetrize."""
    paths = paths or photo_paths()
    estimates, mirror, uv_photo, photo = [], None, None, None
    for path in paths:
        image = read_rgb(path)
        for view, _inverse in _augmented_views(image):
            for flip in (False, True):
                pix = landmarks_pixels(view[:, ::-1].copy() if flip else view)
                if pix is None:
                    continue
                if flip:
                    pix[:, 0] = view.shape[1] - pix[:, 0]
                pts = to_head_frame(pix)
                if mirror is None:
                    mirror = mirror_map(pts)
                if flip:
                    pts = pts[mirror]  # a flipped photo's "left eye" is the subject's right
                if uv_photo is None:
                    uv_photo = pix[:, :2]
                    photo = image
                    reference = pts
                estimates.append(similarity_align(pts, reference))
    mean = np.mean(estimates, axis=0)
    sym = _symmetrize(mean, mirror)
    ipd = np.linalg.norm(sym[IRIS_CENTRES[0]] - sym[IRIS_CENTRES[1]])
    sym = sym * (IPD_M / ipd)
    return FaceEstimate(points=sym, uv_photo=uv_photo, photo=photo, mirror=mirror)


def _symmetrize(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Frontalize (symmetry plane x=0, face plane upright) and average each point with its mirror."""
    flip = np.array([-1.0, 1.0, 1.0])
    current = _symmetric_frame(points, mirror)
    current = 0.5 * (current + current[mirror] * flip)
    # pitch: forehead (10) and chin (152) at the same depth
    v = current[10] - current[152]
    angle = np.arctan2(v[2], v[1])
    c, s = np.cos(angle), np.sin(angle)
    pitch = np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
    return current @ pitch.T


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k * (1 / (1 + c))
