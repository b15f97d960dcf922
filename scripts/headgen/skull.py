"""Close the face into a full head: skull by meridians from the face outline, ears, neck."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Head proportions (metres): half-breadth, half-height, half-length of the cranium
# ellipsoid, and where its centre sits relative to the face (eyes at y≈0.03).
CRANIUM_AXES = np.array([0.077, 0.104, 0.099])
CRANIUM_CENTRE = np.array([0.0, 0.018, -0.088])
NUM_RINGS = 26
NECK_RADII = (0.052, 0.058)  # x, z half-axes of the neck's cross-section
NECK_LENGTH = 0.11
NECK_FRONT_Z, NECK_BACK_Z = -0.040, -0.130  # where the neck meets the underside of the head


@dataclass
class Skull:
    vertices: np.ndarray
    faces: np.ndarray
    rings: np.ndarray
    """[K, M] vertex ids of each ring (ring 0 is the face outline)."""
    pole: int
    neck_loop_top: np.ndarray
    neck_bottom: np.ndarray
    """Vertex ids of the neck's bottom ring."""
    neck_vertices: np.ndarray
    ear_weight: np.ndarray
    """[V] how much each vertex belongs to an ear bump."""


def _ellipsoid_radius(dirs: np.ndarray) -> np.ndarray:
    radius = 1.0 / np.sqrt(((dirs / CRANIUM_AXES) ** 2).sum(-1))
    # the occiput tucks in above the nape instead of hanging over the neck
    tuck = np.clip(-dirs[:, 1], 0, 1) ** 2 * np.clip(-dirs[:, 2], 0, 1) ** 2
    return radius * (1 - 0.35 * tuck)


def _spherical(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit vectors with polar angle θ from +z (the face direction) and azimuth φ from +x towards +y."""
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)


def build_skull(vertices: np.ndarray, outline: np.ndarray) -> Skull:
    """Grow meridians from the face outline [M] (ordered) back to a pole behind the head."""
    base = len(vertices)
    rel = vertices[outline] - CRANIUM_CENTRE
    r0 = np.linalg.norm(rel, axis=1)
    d0 = rel / r0[:, None]
    theta0 = np.arccos(np.clip(d0[:, 2], -1, 1))
    phi = np.arctan2(d0[:, 1], d0[:, 0])
    excess = r0 - _ellipsoid_radius(d0)

    m = len(outline)
    new, rings = [], [outline]
    s = np.linspace(0, 1, NUM_RINGS + 1)[1:-1]
    # denser rings near the face, where the blend from face to cranium happens
    s = s**1.25
    for k, sk in enumerate(s):
        theta = theta0 + (np.pi - theta0) * sk
        dirs = _spherical(theta, phi)
        decay = np.exp(-(theta - theta0) / 0.45)
        radius = _ellipsoid_radius(dirs) + excess * decay
        new.append(CRANIUM_CENTRE + dirs * radius[:, None])
        rings.append(base + k * m + np.arange(m))
    pole_pos = CRANIUM_CENTRE + np.array([0, 0, -CRANIUM_AXES[2]])
    pts = np.concatenate([vertices, *new, pole_pos[None]])
    pole = len(pts) - 1
    rings = np.array(rings)

    faces = []
    for k in range(len(rings) - 1):
        a, b = rings[k], rings[k + 1]
        for i in range(m):
            j = (i + 1) % m
            faces += [(a[i], b[i], b[j]), (a[i], b[j], a[j])]
    last = rings[-1]
    faces += [(last[i], pole, last[(i + 1) % m]) for i in range(m)]
    faces = np.array(faces, dtype=np.int64)

    pts, faces, ear_weight = _ears(pts, faces, base)
    pts, faces, top, bottom, neck_ids = _neck(pts, faces, rings, phi)
    return Skull(pts, faces, rings, pole, top, bottom, neck_ids, np.pad(ear_weight, (0, len(pts) - len(ear_weight))))


def _ears(pts: np.ndarray, faces: np.ndarray, first_skull: int):
    """Outward bumps where the ears are (no ear geometry of their own: a textured region)."""
    weight = np.zeros(len(pts))
    for side in (-1.0, 1.0):
        centre = np.array([side * CRANIUM_AXES[0], -0.004, -0.078])
        d = pts - centre
        # taller than wide: ellipse in the side plane (y, z)
        e = (d[:, 1] / 0.030) ** 2 + (d[:, 2] / 0.016) ** 2 + (d[:, 0] / 0.03) ** 2
        w = np.exp(-2.0 * e)
        w[:first_skull] = 0
        weight = np.maximum(weight, w)
        pts = pts + (w * 0.011)[:, None] * np.array([side, 0.0, -0.25])
    return pts, faces, weight


def _neck(pts: np.ndarray, faces: np.ndarray, rings: np.ndarray, phi: np.ndarray):
    """Cut a patch under the skull and extrude a capped neck tube from it."""
    down = np.abs(np.angle(np.exp(1j * (phi + np.pi / 2)))) < np.radians(40)
    cols = np.nonzero(down)[0]
    # contiguous run of columns around the chin direction
    order = np.argsort(np.angle(np.exp(1j * (phi[cols] + np.pi / 2))))
    cols = cols[order]
    # rings between the throat (just behind the jaw) and the nape, on the middle meridian
    mid = cols[len(cols) // 2]
    z_mid = pts[rings[:, mid], 2]
    k0 = int(np.argmax(z_mid < NECK_FRONT_Z))
    k1 = int(np.argmax(z_mid < NECK_BACK_Z))
    cut = set()
    for k in range(k0, k1):
        for idx in range(len(cols) - 1):
            i, j = cols[idx], cols[idx + 1]
            a, b = rings[k], rings[k + 1]
            cut.add(frozenset((a[i], b[i], b[j])))
            cut.add(frozenset((a[i], b[j], a[j])))
    keep = np.array([frozenset(f) not in cut for f in faces])
    faces = faces[keep]
    # boundary loop of the hole, in order: along ring k0, down the last column, back along k1, up the first
    loop = [rings[k0][c] for c in cols] + [rings[k][cols[-1]] for k in range(k0 + 1, k1 + 1)]
    loop += [rings[k1][c] for c in cols[::-1][1:]] + [rings[k][cols[0]] for k in range(k1 - 1, k0, -1)]
    loop = np.array(loop)
    top = pts[loop]
    centre = top.mean(0)
    # the tube goes down and slightly back; its cross-section morphs into an ellipse
    n_rings = 9
    ang = np.arctan2(top[:, 2] - centre[2], top[:, 0] - centre[0])
    ellipse = np.stack([NECK_RADII[0] * np.cos(ang), np.zeros_like(ang), NECK_RADII[1] * np.sin(ang)], -1)
    bottom_centre = centre + np.array([0.0, -NECK_LENGTH, 0.008])
    new_ids, all_new = [loop], []
    base = len(pts)
    for r in range(1, n_rings + 1):
        t = r / n_rings
        blend = np.clip(t * 2.2, 0, 1) ** 0.8
        ring = (1 - blend) * top + blend * (centre + ellipse)
        ring = ring + (bottom_centre - centre) * t
        ring[:, 1] = (1 - blend) * top[:, 1] + blend * (centre[1]) + (bottom_centre[1] - centre[1]) * t
        all_new.append(ring)
        new_ids.append(base + (r - 1) * len(loop) + np.arange(len(loop)))
    pts = np.concatenate([pts, *all_new])
    tube = []
    n = len(loop)
    for r in range(n_rings):
        a, b = new_ids[r], new_ids[r + 1]
        for i in range(n):
            j = (i + 1) % n
            tube += [(a[i], a[j], b[j]), (a[i], b[j], b[i])]
    cap_centre = len(pts)
    pts = np.concatenate([pts, pts[new_ids[-1]].mean(0)[None]])
    bottom = new_ids[-1]
    tube += [(bottom[i], bottom[(i + 1) % n], cap_centre) for i in range(n)]
    faces = np.concatenate([faces, np.array(tube, dtype=np.int64)])
    neck_ids = np.concatenate([np.concatenate(new_ids[1:]), [cap_centre]])
    return pts, faces, loop, bottom, neck_ids
