"""Assemble the default head's geometry and remember which vertices are what."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from headgen import face, mesh, parts, skull

# mediapipe landmark ids (subject's right first where paired)
INNER_UPPER_LIP = [191, 80, 81, 82, 13, 312, 311, 310, 415]
INNER_LOWER_LIP = [95, 88, 178, 87, 14, 317, 402, 318, 324]
OUTER_UPPER_LIP = [185, 40, 39, 37, 0, 267, 269, 270, 409]
OUTER_LOWER_LIP = [146, 91, 181, 84, 17, 314, 405, 321, 375]
MOUTH_CORNERS_INNER = (78, 308)
MOUTH_CORNERS_OUTER = (61, 291)
EYE_CORNERS = {"right": (133, 33), "left": (362, 263)}  # (inner, outer)
IRIS = {"right": (468, (469, 470, 471, 472)), "left": (473, (474, 475, 476, 477))}


@dataclass
class Head:
    vertices: np.ndarray
    faces: np.ndarray
    num_face_vertices: int
    """Vertices [0, num_face_vertices) are the (subdivided) mediapipe face; 468..477 are the iris landmarks."""
    uv_photo: np.ndarray
    """[num_face_vertices, 2] pixel position of each face vertex in the texture photograph."""
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    """Named vertex-id sets (eyes, lids, lips, skull, neck, teeth, cavity …)."""
    eye_centres: dict[str, np.ndarray] = field(default_factory=dict)
    skull: skull.Skull | None = None


def _neutralize(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Close the lips and relax the photographs' smile, so the template is a neutral face."""
    n = 468
    v = points.copy()
    lap = mesh.laplacian(v[:n], faces)
    lips = INNER_UPPER_LIP + INNER_LOWER_LIP + list(MOUTH_CORNERS_INNER) + list(MOUTH_CORNERS_OUTER)
    dist = mesh.geodesic(v[:n], faces, lips)
    fixed = {i: np.zeros(3) for i in np.nonzero(dist > 0.032)[0]}
    for u, lo in zip(INNER_UPPER_LIP, INNER_LOWER_LIP):
        mid = 0.5 * (v[u] + v[lo])
        fixed[u], fixed[lo] = mid - v[u], mid - v[lo]
    for c in MOUTH_CORNERS_INNER + MOUTH_CORNERS_OUTER:
        side = np.sign(v[c, 0])
        fixed[c] = np.array([-0.0015 * side, -0.0028, 0.0005])
    offsets = mesh.harmonic_field(lap, fixed, np.nonzero(dist <= 0.032)[0])
    v[:n] += offsets
    return v


def _split_loop(loop: np.ndarray, vertices: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a closed loop at vertices a and b into (upper arc, lower arc), each ordered from a to b, ends excluded."""
    loop = list(loop)
    ia, ib = loop.index(a), loop.index(b)
    n = len(loop)
    arc1 = [loop[(ia + k) % n] for k in range(1, (ib - ia) % n)]
    arc2 = [loop[(ia - k) % n] for k in range(1, (ia - ib) % n)]
    arc1, arc2 = np.array(arc1), np.array(arc2)
    if vertices[arc1, 1].mean() < vertices[arc2, 1].mean():
        arc1, arc2 = arc2, arc1
    return arc1, arc2


def build_head(est: face.FaceEstimate) -> Head:
    faces0 = mesh.orient(face.face_triangles(), est.points, np.array([0.0, 0.0, 1.0]))
    points = _neutralize(est.points, faces0)
    v, f, extra = mesh.subdivide(points, faces0, {"uv": est.uv_photo})
    n_face = len(v)
    loops = sorted(mesh.boundary_loops(f), key=len)
    outline, mouth = loops[-1], loops[-2]
    eye_loops = {}
    for loop in loops[:2]:
        side = "left" if v[loop, 0].mean() > 0 else "right"
        eye_loops[side] = loop
    groups: dict[str, np.ndarray] = {"face": np.setdiff1d(np.arange(n_face), np.arange(468, 478))}

    sk = skull.build_skull(v, outline)
    v, all_faces = sk.vertices, [f, sk.faces]
    groups["skull"] = np.setdiff1d(np.arange(n_face, len(v)), sk.neck_vertices)
    groups["neck"] = sk.neck_vertices
    groups["neck_bottom"] = sk.neck_bottom
    groups["neck_top"] = sk.neck_loop_top
    groups["ears"] = np.nonzero(sk.ear_weight > 0.3)[0]
    groups["outline"] = outline

    centres, phase = {}, None
    for side, (cid, ring) in IRIS.items():  # right eye first; the left one mirrors its ring phase
        start = len(v)
        ring = np.array(ring)
        v, part, centre, used = parts.eyeball(v, cid, ring, v[ring], v[cid], None if phase is None else np.pi - phase)
        phase = used
        all_faces.append(part.faces)
        centres[side] = centre
        groups[f"eyeball_{side}"] = np.concatenate([[cid], ring, np.arange(start, len(v))])
    for side, loop in eye_loops.items():
        v = parts.push_outside_sphere(v, loop, centres[side], parts.EYE_RADIUS + 0.0008)
        inner, outer = EYE_CORNERS[side]
        upper, lower = _split_loop(loop, v, inner, outer)
        groups[f"lid_upper_{side}"], groups[f"lid_lower_{side}"] = upper, lower
        groups[f"eye_loop_{side}"] = loop
        start = len(v)
        part = parts.eye_socket(v, loop, centres[side])
        v = part.vertices
        all_faces.append(part.faces)
        groups[f"socket_{side}"] = np.arange(start, len(v))

    upper, lower = _split_loop(mouth, v, *MOUTH_CORNERS_INNER)
    groups["mouth_loop"], groups["lip_inner_upper"], groups["lip_inner_lower"] = mouth, upper, lower
    side = np.where(np.isin(mouth, upper), 1, np.where(np.isin(mouth, lower), -1, 0))
    start = len(v)
    part = parts.mouth_cavity(v, mouth, side)
    v = part.vertices
    all_faces.append(part.faces)
    cavity = np.arange(start, len(v))
    groups["cavity"] = cavity
    rings = cavity[:-1].reshape(-1, len(mouth))  # the tube's rings, then its cap centre
    groups["cavity_lower"] = rings[:, side < 0].ravel()
    y = v[13, 1]  # the closed lips' meeting line
    front = np.array([0.0, y, v[13, 2] - 0.0055])
    for name, (dz, half, top, bottom) in {
        "teeth_upper": (0.0, 0.0235, y + 0.0095, y - 0.0008),
        "teeth_lower": (-0.0016, 0.0215, y - 0.0014, y - 0.0105),
    }.items():
        start = len(v)
        part = parts.teeth_arch(v, front + [0, 0, dz], half, top, bottom)
        v = part.vertices
        all_faces.append(part.faces)
        groups[name] = np.arange(start, len(v))

    faces = mesh.orient_outward(v, np.concatenate(all_faces))
    # drop the vertices left without faces where the neck was cut out (order is kept, so landmark ids stay)
    used = np.zeros(len(v), bool)
    used[faces.ravel()] = True
    remap = np.cumsum(used) - 1
    assert used[:478].all(), "a landmark vertex lost its faces"
    groups = {k: remap[ids[used[ids]]] for k, ids in groups.items()}
    return Head(v[used], remap[faces], n_face, extra["uv"], groups, centres, sk)
