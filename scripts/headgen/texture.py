"""UV layout and the texture atlas of the default head (photo face + procedural rest).

Atlas (width 2S × height S): the left square holds the face photograph, the
right square an azimuthal map of the skull (hair and skin), strips for the neck,
and small patches for the eyes' sclera, the teeth and the mouth cavity.
"""

from __future__ import annotations

import cv2
import numpy as np

from headgen.assemble import Head

SIZE = 512
SKULL_CENTRE = np.array([0.0, 0.01, -0.085])
PATCHES = {  # name: (u0, v0, u1, v1) in atlas uv
    "neck": (0.52, 0.93, 0.98, 0.99),
    "sclera": (0.52, 0.02, 0.56, 0.06),
    "teeth": (0.58, 0.02, 0.62, 0.06),
    "cavity": (0.64, 0.02, 0.68, 0.10),
}
DISK = (0.75, 0.48, 0.23, 0.44)  # centre u, centre v, radius u, radius v


def photo_crop_box(uv_photo: np.ndarray, margin: float = 0.12) -> np.ndarray:
    lo, hi = uv_photo.min(0), uv_photo.max(0)
    c, half = 0.5 * (lo + hi), 0.5 * (hi - lo).max() * (1 + margin)
    return np.array([c[0] - half, c[1] - half, c[0] + half, c[1] + half])


def _skull_uv(points: np.ndarray) -> np.ndarray:
    d = points - SKULL_CENTRE
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    gamma = np.arccos(np.clip(d[:, 1], -1, 1)) / np.pi  # 0 at the crown, 1 straight down
    beta = np.arctan2(d[:, 2], d[:, 0])
    cu, cv, ru, rv = DISK
    return np.stack([cu + ru * gamma * np.cos(beta), cv - rv * gamma * np.sin(beta)], -1)


def layout(head: Head) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-corner UVs: returns uvs [Vt, 2], uv_faces [F, 3] and the photo crop box."""
    v, g = head.vertices, head.groups
    box = photo_crop_box(head.uv_photo[: head.num_face_vertices])
    part = np.full(len(v), "skull", dtype=object)
    part[: head.num_face_vertices] = "face"
    for name in (
        "neck",
        "teeth_upper",
        "teeth_lower",
        "cavity",
        "socket_left",
        "socket_right",
        "eyeball_left",
        "eyeball_right",
    ):
        part[g[name]] = name
    uvs, index = [], {}

    def uv_of(vid: int, kind: str, wrap_ref: float | None = None) -> int:
        key = (vid, kind, None if wrap_ref is None else wrap_ref > 0.5)
        if key in index:
            return index[key]
        p = v[vid]
        if kind == "face":
            px = head.uv_photo[vid]
            uv = np.array([(px[0] - box[0]) / (box[2] - box[0]) * 0.5, (px[1] - box[1]) / (box[3] - box[1])])
        elif kind == "skull":
            uv = _skull_uv(p[None])[0]
        elif kind == "neck":
            ang = (np.arctan2(p[0], p[2]) / (2 * np.pi)) % 1.0
            if wrap_ref is not None and wrap_ref > 0.5 and ang < 0.25:
                ang += 1.0
            top, bottom = v[g["neck_top"], 1].mean(), v[g["neck_bottom"], 1].mean()
            t = np.clip((p[1] - top) / (bottom - top), 0, 1)
            u0, v0, u1, v1 = PATCHES["neck"]
            uv = np.array([u0 + (u1 - u0) * ang / 1.25, v0 + (v1 - v0) * t])
        elif kind.startswith("eyeball"):
            side = kind.split("_")[1]
            centre = head.eye_centres[side]
            d = p - centre
            d /= np.linalg.norm(d)
            if d[2] > np.cos(np.radians(58)):
                iris = 468 if side == "right" else 473
                px_per_m = np.linalg.norm(head.uv_photo[468] - head.uv_photo[473]) / 0.063
                px = head.uv_photo[iris] + np.array([d[0], -d[1]]) * 0.0120 * px_per_m
                uv = np.array([(px[0] - box[0]) / (box[2] - box[0]) * 0.5, (px[1] - box[1]) / (box[3] - box[1])])
            else:
                uv = _patch_centre("sclera")
        elif kind.startswith("teeth"):
            uv = _patch_centre("teeth")
        elif kind == "cavity" or kind.startswith("socket"):
            u0, v0, u1, v1 = PATCHES["cavity"]
            depth = np.clip((v[g["mouth_loop"], 2].mean() - p[2]) / 0.05, 0, 1) if kind == "cavity" else 1.0
            uv = np.array([0.5 * (u0 + u1), v0 + (v1 - v0) * depth])
        index[key] = len(uvs)
        uvs.append(uv)
        return index[key]

    uv_faces = np.zeros_like(head.faces)
    for fi, f in enumerate(head.faces):
        kinds = [part[i] for i in f]
        # a face made of face-mesh vertices samples the photo; any face touching the skull or neck
        # uses that part's map for all its corners (the outline is shared by face and skull)
        kind = next((k for k in ("neck", "skull") if k in kinds), kinds[0])
        if kind == "face" and any(k != "face" for k in kinds):
            kind = next(k for k in kinds if k != "face")
        wrap = None
        if kind == "neck":
            angs = [(np.arctan2(v[i, 0], v[i, 2]) / (2 * np.pi)) % 1.0 for i in f]
            wrap = 1.0 if max(angs) - min(angs) > 0.5 else 0.0
        uv_faces[fi] = [uv_of(int(i), kind, wrap) for i in f]
    return np.array(uvs), uv_faces, box


def _patch_centre(name: str) -> np.ndarray:
    u0, v0, u1, v1 = PATCHES[name]
    return np.array([0.5 * (u0 + u1), 0.5 * (v0 + v1)])


def _noise(shape, scale, rng) -> np.ndarray:
    small = rng.standard_normal((max(shape[0] // scale, 2), max(shape[1] // scale, 2))).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def paint_atlas(head: Head, box: np.ndarray, photo: np.ndarray, seed: int = 0) -> np.ndarray:
    """The texture atlas [S, 2S, 3] float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    s = SIZE
    atlas = np.zeros((s, 2 * s, 3), np.float32)
    # left: the photograph's face crop
    x0, y0, x1, y1 = box
    m = np.array([[s / (x1 - x0), 0, -x0 * s / (x1 - x0)], [0, s / (y1 - y0), -y0 * s / (y1 - y0)]])
    face = cv2.warpAffine(
        photo.astype(np.float32) / 255.0, m, (s, s), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    uvp = head.uv_photo
    skin = _skin_colour(photo, uvp[[205, 425, 50, 280, 187, 411, 207, 427, 147, 376]])
    hair = _mean_colour(photo, uvp[[10, 109, 338]] + np.array([0, -18]), 5)
    # blend the photo into skin towards the face outline (the photo shows background beyond it)
    outline = head.groups["outline"]
    poly = ((uvp[outline] - box[:2]) / (box[2:] - box[:2]) * s).astype(np.int32)
    mask = np.zeros((s, s), np.uint8)
    cv2.fillPoly(mask, [poly], 255)
    mask = cv2.erode(mask, np.ones((9, 9), np.uint8))
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 5)[..., None]
    ys = np.arange(s)[:, None, None] / s
    edge_colour = np.where(ys < poly[:, 1].min() / s + 0.12, hair, skin)
    atlas[:, :s] = soft * face + (1 - soft) * edge_colour

    # right: the skull disk — hair on the crown and back, skin on the sides low down, ears redder
    u = (np.arange(s, 2 * s) + 0.5) / (2 * s)
    vv = (np.arange(s) + 0.5) / s
    uu, vgrid = np.meshgrid(u, vv)
    cu, cv, ru, rv = DISK
    du, dv = (uu - cu) / ru, -(vgrid - cv) / rv
    gamma = np.sqrt(du**2 + dv**2) * np.pi
    beta = np.arctan2(dv, du)
    d = np.stack([np.sin(gamma) * np.cos(beta), np.cos(gamma), np.sin(gamma) * np.sin(beta)], -1)
    front = d[..., 2]
    back = np.clip(-front, 0, 1)
    hairline = 0.05 - 0.7 * back + 0.12 * np.abs(d[..., 0]) * (1 - back) - 0.05 * _noise((s, s), 16, rng)
    is_hair = d[..., 1] > hairline
    hair_mask = cv2.GaussianBlur(is_hair.astype(np.float32), (0, 0), 3)[..., None]
    streaks = 0.10 * _noise((s, s), 2, rng)[..., None] + 0.06 * _noise((s, s), 12, rng)[..., None]
    hair_tex = np.clip(hair * (1 + streaks), 0, 1)
    skin_tex = np.clip(skin * (1 + 0.03 * _noise((s, s), 8, rng)[..., None]), 0, 1)
    ear = np.exp(
        -(((np.abs(d[..., 0]) - 0.95) / 0.08) ** 2 + ((d[..., 1] + 0.05) / 0.25) ** 2 + ((front + 0.05) / 0.2) ** 2)
    )
    skin_tex = skin_tex * (1 - 0.15 * ear[..., None] * np.array([0.2, 1.0, 1.0]))
    atlas[:, s:] = hair_mask * hair_tex + (1 - hair_mask) * skin_tex

    def fill(name, colour):
        u0, v0, u1, v1 = PATCHES[name]
        atlas[int(v0 * s) - 2 : int(v1 * s) + 2, int(u0 * 2 * s) - 2 : int(u1 * 2 * s) + 2] = colour

    fill("neck", skin)
    fill("sclera", np.array([0.86, 0.84, 0.80]))
    fill("teeth", np.array([0.90, 0.88, 0.80]))
    u0, v0, u1, v1 = PATCHES["cavity"]
    rows = np.arange(int(v0 * s) - 2, int(v1 * s) + 2)
    t = np.clip((rows / s - v0) / (v1 - v0), 0, 1)[:, None, None]
    atlas[rows[0] : rows[-1] + 1, int(u0 * 2 * s) - 2 : int(u1 * 2 * s) + 2] = (1 - t) * np.array(
        [0.45, 0.12, 0.12]
    ) + t * np.array([0.08, 0.02, 0.02])
    return np.clip(atlas, 0, 1)


def _mean_colour(photo: np.ndarray, pixels: np.ndarray, radius: int) -> np.ndarray:
    out = []
    for x, y in pixels.astype(int):
        out.append(
            photo[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1].reshape(-1, 3).mean(0)
        )
    return np.mean(out, axis=0).astype(np.float32) / 255.0


def _skin_colour(photo: np.ndarray, cheek_px: np.ndarray) -> np.ndarray:
    """Median colour of the lower cheeks (the skin next to the face outline, where the photo meets the
    procedural skin)."""
    pixels = [photo[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4].reshape(-1, 3) for x, y in cheek_px]
    return np.median(np.concatenate(pixels), axis=0).astype(np.float32) / 255.0
