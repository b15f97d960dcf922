"""Separate parts inside the head shell: eyeballs, eye sockets, mouth cavity, teeth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EYE_RADIUS = 0.0120
SEGMENTS = 16


@dataclass
class Part:
    vertices: np.ndarray
    faces: np.ndarray
    """Faces index the full vertex array (existing ids + the part's new ones, which start at ``first``)."""
    first: int


def _sphere_frame(axis: np.ndarray):
    axis = axis / np.linalg.norm(axis)
    helper = np.array([0.0, 1.0, 0.0]) if abs(axis[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(helper, axis)
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u), axis


def eyeball(
    all_vertices: np.ndarray,
    centre_id: int,
    ring_ids: np.ndarray,
    iris_points: np.ndarray,
    iris_centre: np.ndarray,
    phase: float | None = None,
) -> tuple[np.ndarray, Part, np.ndarray, float]:
    """A UV-sphere eyeball whose front pole is the iris-centre landmark and whose
    iris ring contains the four iris-boundary landmarks as vertices.

    Returns the updated vertex array (landmark rows moved onto the sphere), the
    part, the eyeball centre and the ring phase used (pass the mirrored phase,
    π - phase, for the other eye so both eyeballs are mirror images).
    """
    gaze = np.array([0.0, 0.0, 1.0])
    centre = iris_centre - EYE_RADIUS * gaze
    u, v, w = _sphere_frame(gaze)
    iris_r = np.mean(np.linalg.norm(iris_points - iris_centre, axis=1))
    alpha = np.arcsin(min(iris_r / EYE_RADIUS, 0.9))
    # ring phase chosen so that the four landmarks fall on ring vertices
    land_az = np.arctan2((iris_points - iris_centre) @ v, (iris_points - iris_centre) @ u)
    phase = land_az[0] if phase is None else phase
    polar = [
        alpha * 0.45,
        alpha,
        alpha * 1.35,
        np.radians(55),
        np.radians(80),
        np.radians(105),
        np.radians(135),
        np.radians(160),
    ]
    az = phase + np.arange(SEGMENTS) * 2 * np.pi / SEGMENTS

    def point(theta, phi):
        d = np.cos(theta) * w + np.sin(theta) * (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v)
        return centre + EYE_RADIUS * d

    verts = all_vertices.copy()
    verts[centre_id] = centre + EYE_RADIUS * w
    first = len(verts)
    rings, new = [], []
    for k, theta in enumerate(polar):
        pts = point(theta, az)
        start = first + sum(len(r) for r in new)
        if k != 1:
            ids = start + np.arange(SEGMENTS)
            new.append(pts)
        else:
            # the iris ring: the slots nearest the four landmarks' directions are the landmark vertices
            ids = np.full(SEGMENTS, -1)
            for lid, a in zip(ring_ids, land_az):
                j = int(np.argmin(np.abs(np.angle(np.exp(1j * (az - a))))))
                ids[j] = lid
                verts[lid] = pts[j]
            free = ids < 0
            ids[free] = start + np.arange(free.sum())
            new.append(pts[free])
        rings.append(ids)
    back_id = first + sum(len(r) for r in new)
    new.append((centre - EYE_RADIUS * w)[None])
    verts = np.concatenate([verts, *new])
    faces = [(centre_id, rings[0][i], rings[0][(i + 1) % SEGMENTS]) for i in range(SEGMENTS)]
    for a, b in zip(rings[:-1], rings[1:]):
        for i in range(SEGMENTS):
            j = (i + 1) % SEGMENTS
            faces += [(a[i], b[i], b[j]), (a[i], b[j], a[j])]
    faces += [(rings[-1][i], back_id, rings[-1][(i + 1) % SEGMENTS]) for i in range(SEGMENTS)]
    return verts, Part(verts, np.array(faces, dtype=np.int64), first), centre, phase


def push_outside_sphere(vertices: np.ndarray, ids: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Move the given vertices out of a sphere (eyelids must not cut into the eyeball)."""
    out = vertices.copy()
    d = out[ids] - centre
    r = np.linalg.norm(d, axis=1)
    inside = r < radius
    out[ids[inside]] = centre + d[inside] / r[inside, None] * radius
    return out


def tube(vertices: np.ndarray, loop: np.ndarray, rings: list[np.ndarray], cap: bool = True) -> Part:
    """Extrude an existing vertex loop through the given rings of new points [len(loop), 3], optionally capped."""
    first = len(vertices)
    n = len(loop)
    ids = [loop] + [first + k * n + np.arange(n) for k in range(len(rings))]
    verts = np.concatenate([vertices, *rings])
    faces = []
    for a, b in zip(ids[:-1], ids[1:]):
        for i in range(n):
            j = (i + 1) % n
            faces += [(a[i], b[i], b[j]), (a[i], b[j], a[j])]
    if cap:
        c = len(verts)
        verts = np.concatenate([verts, rings[-1].mean(0)[None]])
        faces += [(ids[-1][i], c, ids[-1][(i + 1) % n]) for i in range(n)]
    return Part(verts, np.array(faces, dtype=np.int64), first)


def eye_socket(vertices: np.ndarray, lid_loop: np.ndarray, centre: np.ndarray) -> Part:
    """A short capped tube from the eyelid opening around the eyeball, so no gap shows into the head."""
    lid = vertices[lid_loop]
    d = lid - centre
    on_ball = centre + d / np.linalg.norm(d, axis=1, keepdims=True) * EYE_RADIUS * 0.97
    axis = np.array([0.0, 0.0, 1.0])
    back = centre + (on_ball - centre) * 0.6 - axis * EYE_RADIUS * 0.5
    return tube(vertices, lid_loop, [on_ball, back])


def mouth_cavity(vertices: np.ndarray, lip_loop: np.ndarray, side: np.ndarray) -> Part:
    """A closed bag behind the lips, opening up behind the upper lip and down behind the lower
    one (the vestibule), so the teeth sit inside it and show when the mouth opens.

    side: [len(lip_loop)] +1 for upper-lip vertices, -1 for lower-lip ones, 0 at the corners.
    """
    lip = vertices[lip_loop]
    mouth_centre = lip.mean(0)
    rel = lip - mouth_centre
    half = np.abs(rel[:, 0]).max()
    up = side.astype(float)
    middle = 1 - (rel[:, 0] / half) ** 2  # the bag opens most in the middle, not at the corners
    back = np.array([0.0, 0.0, -1.0])

    def ring(depth, height, width):
        pts = mouth_centre + rel * np.array([width, 1.0, 1.0]) + back * depth
        return pts + np.outer(up * (0.25 + 0.75 * middle) * height, [0.0, 1.0, 0.0])

    rings = [ring(0.003, 0.005, 1.0), ring(0.009, 0.012, 1.05), ring(0.035, 0.014, 0.9), ring(0.055, 0.006, 0.4)]
    return tube(vertices, lip_loop, rings)


def teeth_arch(
    vertices: np.ndarray, front: np.ndarray, half_width: float, top: float, bottom: float, depth: float = 0.005
) -> Part:
    """A closed curved band of teeth along a parabolic dental arch. ``front`` [3]: centre of its front face."""
    n = 17
    x = np.linspace(-half_width, half_width, n)
    z = front[2] - 1.2 * x**2 / half_width  # the arch curves back ~2 cm at the canines/premolars
    ring = []
    for yy, dz in ((top, 0.0), (bottom, 0.0), (bottom, -depth), (top, -depth)):
        ring.append(np.stack([x + front[0], np.full(n, yy), z + dz], -1))
    first = len(vertices)
    pts = np.concatenate(ring)
    ids = [first + k * n + np.arange(n) for k in range(4)]
    faces = []
    for k in range(4):
        a, b = ids[k], ids[(k + 1) % 4]
        for i in range(n - 1):
            faces += [(a[i], a[i + 1], b[i + 1]), (a[i], b[i + 1], b[i])]
    for end in (0, n - 1):
        c = [ids[k][end] for k in range(4)]
        faces += [(c[0], c[1], c[2]), (c[0], c[2], c[3])]
    return Part(np.concatenate([vertices, pts]), np.array(faces, dtype=np.int64), first)
