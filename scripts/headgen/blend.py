"""Skinning weights, joint regressor, and the procedural expression / shape bases."""

from __future__ import annotations

import numpy as np

from headgen import mesh
from headgen.assemble import (
    EYE_CORNERS,
    MOUTH_CORNERS_INNER,
    MOUTH_CORNERS_OUTER,
    OUTER_LOWER_LIP,
    OUTER_UPPER_LIP,
    Head,
)

ROOT, NECK, JAW, EYE_L, EYE_R = range(5)
PARENTS = np.array([-1, 0, 1, 1, 1])

JAW_LINE = [397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172]
CHIN = [152, 175, 199, 200, 18, 171, 396, 208, 428, 32, 262, 140, 369, 170, 395]
NOSE = [1, 2, 4, 5, 6, 19, 94, 97, 98, 326, 327, 168, 195, 197, 48, 278, 129, 358, 64, 294]
UPPER_FACE_FREEZE_Y = -0.012  # face vertices above this height never follow the jaw


class Rig:
    """Precomputed mesh operators over the whole head."""

    def __init__(self, head: Head):
        self.head = head
        self.v = head.vertices
        self.lap = mesh.laplacian(self.v, head.faces)
        self.g = head.groups

    def geodesic(self, sources) -> np.ndarray:
        return mesh.geodesic(self.v, self.head.faces, sources)

    def field(self, constraints: dict[int, np.ndarray], radius: float, also_fixed=()) -> np.ndarray:
        """Biharmonic displacement field [V, 3] from constraints, zero beyond ``radius`` (geodesic)."""
        dist = self.geodesic(list(constraints))
        fixed = {i: np.zeros(3) for i in np.nonzero(dist > radius)[0]}
        for i in also_fixed:
            fixed.setdefault(int(i), np.zeros(3))
        fixed.update({int(k): np.asarray(d, float) for k, d in constraints.items()})
        free = np.nonzero(dist <= radius)[0]
        return mesh.harmonic_field(self.lap, fixed, free)


# --------------------------------------------------------------------------- skinning


def skinning(rig: Rig) -> tuple[np.ndarray, np.ndarray]:
    """LBS weights [V, 5] and joint regressor [5, V]."""
    v, g = rig.v, rig.g
    n = len(v)
    jaw_w = _jaw_weights(rig)
    weights = np.zeros((n, 5))
    weights[:, JAW] = jaw_w
    # neck tube: root at the bottom ring, neck at the top loop
    top_y, bottom_y = v[g["neck_top"], 1].mean(), v[g["neck_bottom"], 1].mean()
    t = np.clip((v[:, 1] - bottom_y) / (top_y - bottom_y), 0, 1)
    root_w = np.zeros(n)
    root_w[g["neck"]] = (1 - t[g["neck"]]) ** 1.5
    weights[:, ROOT] = root_w
    for side, j in (("left", EYE_L), ("right", EYE_R)):
        ids = g[f"eyeball_{side}"]
        weights[ids] = 0
        weights[ids, j] = 1
    weights[:, NECK] = 1 - weights.sum(1)
    assert np.all(weights >= -1e-9)

    reg = np.zeros((5, n))
    reg[ROOT, g["neck_bottom"]] = 1 / len(g["neck_bottom"])
    reg[NECK, g["neck_top"]] = 1 / len(g["neck_top"])
    # jaw: the temporomandibular joints, just in front of and below the ears
    left = _nearest(v, np.array([0.064, -0.012, -0.062]), rig.g["skull"])
    right = _nearest(v, v[left] * [-1, 1, 1], rig.g["skull"])
    reg[JAW, [left, right]] = 0.5
    for side, j in (("left", EYE_L), ("right", EYE_R)):
        ids = g[f"eyeball_{side}"]
        front, back = ids[0], ids[-1]  # iris-centre landmark and the back pole
        reg[j, [front, back]] = 0.5
    return weights, reg


def _nearest(v: np.ndarray, p: np.ndarray, among: np.ndarray) -> int:
    return int(among[np.linalg.norm(v[among] - p, axis=1).argmin()])


def _jaw_weights(rig: Rig) -> np.ndarray:
    v, g = rig.v, rig.g
    ones = list(g["lip_inner_lower"]) + OUTER_LOWER_LIP + JAW_LINE + CHIN
    zeros = list(g["lip_inner_upper"]) + OUTER_UPPER_LIP + NOSE + list(MOUTH_CORNERS_OUTER)
    face = g["face"]
    zeros += list(face[v[face, 1] > UPPER_FACE_FREEZE_Y])
    zeros += list(g["neck"]) + list(g["ears"])
    # skull vertices above the jaw's underside
    skull = g["skull"]
    zeros += list(skull[(v[skull, 1] > -0.035) | (v[skull, 2] < -0.075)])
    fixed = {int(i): np.array([0.0]) for i in zeros}
    fixed.update({int(i): np.array([1.0]) for i in ones})
    for c in MOUTH_CORNERS_INNER:
        fixed[c] = np.array([0.5])
    shell = np.unique(np.concatenate([face, skull, g["cavity"]]))
    w = mesh.harmonic_field(rig.lap, fixed, shell, order=1)[:, 0]
    w = np.clip(w, 0, 1)
    w[g["teeth_lower"]] = 1
    w[g["teeth_upper"]] = 0
    # mouth interior: floor with the jaw, palate with the head
    cav = g["cavity"]
    w[cav] = 0
    w[g["cavity_lower"]] = 1
    return w


# --------------------------------------------------------------------------- expressions


def _arc_profile(v: np.ndarray, ids, half_width: float) -> np.ndarray:
    """1 at the mouth's centre line, 0 at its corners (cosine falloff in x)."""
    return np.cos(0.5 * np.pi * np.clip(np.abs(v[ids, 0]) / half_width, 0, 1))


def expression_basis(rig: Rig, jaw_weights: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """[V, 3, E] displacement per unit coefficient, and the component names (head.default.EXPR_NAMES order)."""
    v, g = rig.v, rig.g
    mm = 1e-3
    cl = MOUTH_CORNERS_OUTER[1]
    half = abs(v[cl, 0])
    ui, li = g["lip_inner_upper"], g["lip_inner_lower"]
    uo, lo = np.array(OUTER_UPPER_LIP), np.array(OUTER_LOWER_LIP)
    corners = np.array(MOUTH_CORNERS_INNER + MOUTH_CORNERS_OUTER)
    lips = np.concatenate([ui, li, uo, lo, corners])
    upper_lips, lower_lips = np.concatenate([ui, uo]), np.concatenate([li, lo])
    y_mouth = v[g["mouth_loop"], 1].mean()

    def lipfield(fn, radius=0.030, ids=lips):
        return rig.field({int(i): fn(i) for i in ids}, radius)

    def prof(i):
        return float(np.cos(0.5 * np.pi * min(abs(v[i, 0]) / half, 1.0)))

    def outward(i):
        return np.sign(v[i, 0])

    def corner_share(i):
        return min(abs(v[i, 0]) / half, 1.0) ** 2

    def is_upper(i):
        return i in set(upper_lips.tolist()) or (v[i, 1] > y_mouth and i not in set(lower_lips.tolist()))

    def is_outer(i):
        return i in set(uo.tolist()) or i in set(lo.tolist())

    fields = {}
    fields["mouth_open"] = lipfield(
        lambda i: (
            np.array([0, (1.5 if is_outer(i) else 3.0) * mm * prof(i), 0])
            if is_upper(i)
            else np.array([0, -(2.5 if is_outer(i) else 4.0) * mm * prof(i), 0])
        )
    )
    fields["mouth_stretch"] = lipfield(
        lambda i: np.array(
            [
                7 * mm * v[i, 0] / half,
                (-1 if is_upper(i) else 1) * 0.8 * mm * prof(i) * is_outer(i),
                -2 * mm * corner_share(i),
            ]
        ),
        radius=0.040,
    )
    fields["mouth_pucker"] = lipfield(
        lambda i: np.array(
            [
                -0.35 * v[i, 0],
                (-0.5 if is_upper(i) else 0.5) * mm * (not is_outer(i)),
                (6 * (1 - corner_share(i)) + 1 + 2 * is_outer(i)) * mm,
            ]
        ),
        radius=0.035,
    )
    fields["mouth_funnel"] = lipfield(
        lambda i: np.array(
            [-0.25 * v[i, 0], (1 if is_upper(i) else -1.2) * (2.5 if is_outer(i) else 3.0) * mm * prof(i), 4 * mm]
        ),
        radius=0.035,
    )
    cheek_pts = [205, 425, 50, 280, 187, 411, 207, 427]

    def corner_move(up, out, back):
        def fn(i):
            return np.array([out * outward(i), up, -back]) * mm * corner_share(i)

        return fn

    smile = corner_move(5.0, 4.0, 3.0)
    fields["smile"] = rig.field(
        {**{int(i): smile(i) for i in lips}, **{c: np.array([0, 3, 1.5]) * mm for c in cheek_pts}}, 0.045
    )
    fields["frown"] = lipfield(corner_move(-4.0, 1.0, 1.0), radius=0.035)
    fields["mouth_left"] = lipfield(lambda i: np.array([5 * mm, 0, -1 * mm * max(v[i, 0] / half, 0)]), radius=0.035)
    fields["mouth_right"] = lipfield(lambda i: np.array([-5 * mm, 0, -1 * mm * max(-v[i, 0] / half, 0)]), radius=0.035)
    fields["lips_press"] = lipfield(
        lambda i: np.array([0, (-1.5 if is_upper(i) else 1.5) * mm * prof(i) * is_outer(i), -1 * mm]), radius=0.025
    )
    fields["upper_lip_roll"] = lipfield(
        lambda i: (
            np.array([0, -1.5 * mm * prof(i), -2.5 * mm]) * (1 if is_outer(i) else 0.8) if is_upper(i) else np.zeros(3)
        ),
        radius=0.022,
    )
    fields["lower_lip_roll"] = lipfield(
        lambda i: (
            np.array([0, 2.0 * mm * prof(i), -3.0 * mm]) * (1 if is_outer(i) else 0.7)
            if not is_upper(i)
            else np.zeros(3)
        ),
        radius=0.022,
    )
    fields["upper_lip_raise"] = lipfield(
        lambda i: np.array([0, 3.5 * mm * prof(i), 0.5 * mm]) if is_upper(i) else np.zeros(3), radius=0.028
    )
    fields["lower_lip_depress"] = lipfield(
        lambda i: np.array([0, -3.5 * mm * prof(i), 0.5 * mm]) if not is_upper(i) else np.zeros(3), radius=0.028
    )
    normals = _vertex_normals(rig)
    puff = [425, 205, 411, 187, 427, 207, 436, 216]
    fields["cheek_puff"] = rig.field(
        {**{c: normals[c] * 6 * mm for c in puff}, **{int(c): np.zeros(3) for c in corners}}, 0.035
    )
    raise_pts = [50, 280, 101, 330, 205, 425, 117, 346, 118, 347]
    lower_lids = np.concatenate([g["lid_lower_left"], g["lid_lower_right"]])
    fields["cheek_raise"] = rig.field(
        {
            **{c: np.array([0, 3, 1]) * mm for c in raise_pts},
            **{int(i): np.array([0, 1.2, 0]) * mm for i in lower_lids},
        },
        0.035,
    )
    fields["nose_wrinkle"] = rig.field(
        {
            **{c: np.array([0, 2.5, 0]) * mm for c in (129, 358, 49, 279, 198, 420, 48, 278)},
            **{c: np.array([0, 1.5, -0.5]) * mm for c in (122, 351, 196, 419)},
            **{c: np.array([0, 1.0, 0]) * mm for c in (0, 37, 267)},
            **{c: np.array([0, -1.0, 0]) * mm for c in (55, 285, 107, 336)},
        },
        0.025,
    )
    inner_brow = [55, 65, 107, 66, 285, 295, 336, 296]
    outer_brow = [46, 53, 52, 70, 63, 105, 276, 283, 282, 300, 293, 334]
    fields["brow_inner_up"] = rig.field(
        {c: np.array([0, 5, 0]) * mm for c in inner_brow}, 0.040, also_fixed=_eye_fixed(g)
    )
    fields["brow_outer_up"] = rig.field(
        {c: np.array([0, 5, 0]) * mm for c in outer_brow}, 0.040, also_fixed=_eye_fixed(g)
    )
    fields["brow_down"] = rig.field(
        {c: np.array([0, -4, 1]) * mm for c in inner_brow + outer_brow}, 0.030, also_fixed=_eye_fixed(g)
    )
    fields["brow_in"] = rig.field(
        {c: np.array([-3 * np.sign(v[c, 0]), -1.5, 0.5]) * mm for c in inner_brow}, 0.025, also_fixed=_eye_fixed(g)
    )
    for side in ("left", "right"):
        fields[f"blink_{side}"] = _blink(rig, side)
        fields[f"squint_{side}"] = _lid_move(rig, side, upper=-1.2, lower=2.0)
    wide = {}
    for side in ("left", "right"):
        wide.update(_lid_constraints(rig, side, upper=2.0, lower=-1.0))
    fields["eyes_wide"] = rig.field(wide, 0.020, also_fixed=_eyeball_ids(g))
    jf = np.zeros_like(v)
    jf[:, 2] = 4 * mm * jaw_weights
    fields["jaw_forward"] = jf

    from splattalk.head.default import EXPR_NAMES

    names = list(EXPR_NAMES)
    basis = np.stack([_rigid_parts(rig, fields[n]) for n in names], axis=-1)
    return basis, names


def _eyeball_ids(g) -> np.ndarray:
    return np.concatenate([g["eyeball_left"], g["eyeball_right"]])


def _eye_fixed(g) -> np.ndarray:
    """Eyeballs and the lids' lower arcs stay put when the brows move."""
    return np.concatenate([_eyeball_ids(g), g["lid_lower_left"], g["lid_lower_right"]])


def _lid_constraints(rig: Rig, side: str, upper: float, lower: float) -> dict:
    v, g = rig.v, rig.g
    out = {}
    inner, outer = EYE_CORNERS[side]
    span = abs(v[outer, 0] - v[inner, 0])
    mid = 0.5 * (v[outer, 0] + v[inner, 0])
    for name, amount in (("lid_upper", upper), ("lid_lower", lower)):
        for i in g[f"{name}_{side}"]:
            p = np.cos(np.pi * np.clip((v[i, 0] - mid) / span, -0.5, 0.5))
            out[int(i)] = np.array([0, amount * 1e-3 * p, 0])
    out[inner] = np.zeros(3)
    out[outer] = np.zeros(3)
    return out


def _lid_move(rig: Rig, side: str, upper: float, lower: float) -> np.ndarray:
    return rig.field(_lid_constraints(rig, side, upper, lower), 0.020, also_fixed=_eyeball_ids(rig.g))


def _blink(rig: Rig, side: str) -> np.ndarray:
    """Upper lid closes onto the lower lid (which rises a little); they meet just outside the eyeball."""
    v, g = rig.v, rig.g
    upper, lower = g[f"lid_upper_{side}"], g[f"lid_lower_{side}"]

    def arclen(ids):
        pts = v[ids]
        s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        return s / s[-1]

    su, sl = arclen(upper), arclen(lower)
    lower_at = np.stack([np.interp(su, sl, v[lower, k]) for k in range(3)], -1)
    upper_at = np.stack([np.interp(sl, su, v[upper, k]) for k in range(3)], -1)
    meet_u = lower_at + 0.15 * (v[upper] - lower_at)
    meet_l = v[lower] + 0.15 * (upper_at - v[lower])
    centre = rig.head.eye_centres[side]
    r = 0.0120 + 0.0012

    def outside(p):
        d = p - centre
        n = np.linalg.norm(d, axis=1, keepdims=True)
        return np.where(n < r, centre + d / n * r, p)

    meet_u, meet_l = outside(meet_u), outside(meet_l)
    cons = {int(i): meet_u[k] - v[i] for k, i in enumerate(upper)}
    cons.update({int(i): meet_l[k] - v[i] for k, i in enumerate(lower)})
    inner, outer = EYE_CORNERS[side]
    cons[inner] = np.zeros(3)
    cons[outer] = np.zeros(3)
    return rig.field(cons, 0.022, also_fixed=_eyeball_ids(g))


def _vertex_normals(rig: Rig) -> np.ndarray:
    from splattalk.head.raster import vertex_normals

    return vertex_normals(rig.v, rig.head.faces)


def _rigid_parts(rig: Rig, field: np.ndarray) -> np.ndarray:
    """Eyeballs and teeth never deform with an expression."""
    out = field.copy()
    for name in ("eyeball_left", "eyeball_right", "teeth_upper", "teeth_lower"):
        out[rig.g[name]] = 0
    return out


# --------------------------------------------------------------------------- identity


def shape_basis(rig: Rig) -> np.ndarray:
    """[V, 3, S] identity displacement fields (coefficient 1 ≈ one standard deviation)."""
    v, g = rig.v, rig.g
    mm = 1e-3
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    y_eye = v[[468, 473], 1].mean()
    y_mouth = v[g["mouth_loop"], 1].mean()

    def bump(centre, sigma):
        return np.exp(-np.sum((v - centre) ** 2, axis=1) / (2 * sigma**2))

    def smoothstep(a, b, t):
        s = np.clip((t - a) / (b - a), 0, 1)
        return s * s * (3 - 2 * s)

    face_front = smoothstep(-0.075, -0.02, z)
    back = 1 - smoothstep(-0.08, -0.03, z)
    below_eyes = smoothstep(y_eye, v[152, 1], y)
    nose_tip = v[1]
    eyes = {s: rig.head.eye_centres[s] for s in ("left", "right")}
    fields = [
        0.035 * (v - np.array([0.0, 0.0, -0.06])),  # overall size
        np.stack([0.05 * x * face_front, 0 * x, 0 * x], -1),  # face width
        np.stack([0 * x, -6 * mm * below_eyes, 0 * x], -1),  # lower-face length
        np.stack([0 * x, 0 * x, 0.06 * (z + 0.04) * back], -1),  # skull length
        np.stack([0 * x, -1 * mm * bump(nose_tip, 0.014), 3 * mm * bump(nose_tip, 0.016)], -1),  # nose protrusion
        np.stack([0.15 * x * bump(nose_tip + [0, -0.008, -0.01], 0.012), 0 * x, 0 * x], -1),  # nose width
        np.stack(
            [0.06 * x * smoothstep(y_mouth + 0.01, y_mouth - 0.03, y) * face_front, 0 * x, 0 * x], -1
        ),  # jaw width
        np.stack([0 * x, -1 * mm * bump(v[152], 0.018), 4 * mm * bump(v[152], 0.018)], -1),  # chin
        np.stack(
            [2.5 * mm * np.sign(x) * (bump(eyes["left"], 0.016) + bump(eyes["right"], 0.016)), 0 * x, 0 * x], -1
        ),  # eye spacing
        np.stack([0 * x, 0 * x, 2.5 * mm * bump(v[[9, 107, 336]].mean(0) + [0, 0.004, 0], 0.018)], -1),  # brow ridge
        _vertex_normals(rig) * (3 * mm * (bump(v[205], 0.02) + bump(v[425], 0.02)))[:, None],  # cheeks
        np.stack([0 * x, 1.2 * mm * np.tanh((y - y_mouth) / 0.002), 1 * mm + 0 * x], -1)
        * bump(v[[0, 17]].mean(0), 0.010)[:, None],  # lips
        np.stack(
            [0 * x, 0 * x, -4 * mm * smoothstep(y_eye + 0.02, v[10, 1] + 0.03, y) * face_front], -1
        ),  # forehead slope
        np.stack([0.05 * x * back, 0 * x, 0 * x], -1),  # skull width
        np.stack([0.10 * x * bump(v[[0, 17]].mean(0), 0.015), 0 * x, 0 * x], -1),  # mouth width
        0.12 * sum((v - c) * bump(c + [0, 0, 0.01], 0.010)[:, None] for c in eyes.values()),  # eye size
    ]
    fields = [_shape_rigid_parts(rig, f) for f in fields]
    return np.stack(fields, axis=-1)


def _shape_rigid_parts(rig: Rig, field: np.ndarray) -> np.ndarray:
    """Eyeballs and teeth move rigidly with the identity field at their centre."""
    out = field.copy()
    for name in ("eyeball_left", "eyeball_right", "teeth_upper", "teeth_lower"):
        ids = rig.g[name]
        out[ids] = field[ids].mean(0)
    return out


def orthogonalize(basis: np.ndarray, priority: list[int] | None = None) -> np.ndarray:
    """Gram–Schmidt in priority order, keeping each component's norm.

    Each component only loses its projection onto higher-priority components,
    and those overlap it only where both act, so components stay local and keep
    their meaning (a symmetric/Löwdin orthogonalization spreads every overlap
    over all components: a blink would move the other eye).
    """
    v, c, k = basis.shape
    flat = basis.reshape(-1, k).astype(np.float64)
    norms = np.linalg.norm(flat, axis=0)
    order = list(priority) if priority is not None else list(range(k))
    out = np.zeros_like(flat)
    done: list[np.ndarray] = []
    for j in order:
        x = flat[:, j].copy()
        for q in done:
            x -= (q @ x) * q
        for q in done:  # second pass for numerical orthogonality
            x -= (q @ x) * q
        q = x / np.linalg.norm(x)
        done.append(q)
        out[:, j] = q * norms[j]
    return out.reshape(v, c, k)


EXPR_PRIORITY = [
    "blink_left",
    "blink_right",
    "mouth_open",
    "lips_press",
    "mouth_pucker",
    "mouth_funnel",
    "mouth_stretch",
    "smile",
    "frown",
    "lower_lip_roll",
    "upper_lip_roll",
    "upper_lip_raise",
    "lower_lip_depress",
    "mouth_left",
    "mouth_right",
    "jaw_forward",
    "brow_inner_up",
    "brow_outer_up",
    "brow_down",
    "brow_in",
    "squint_left",
    "squint_right",
    "eyes_wide",
    "cheek_raise",
    "cheek_puff",
    "nose_wrinkle",
]
