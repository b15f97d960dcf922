"""A small z-buffered triangle-mesh renderer (numba), for previews and synthetic data.

Used for head-model renders in the docs, the synthetic sample video and the
tracker's quality overlays. Not differentiable: the Gaussian rasterizer in
``avatar.raster`` is the differentiable one. Cameras are OpenCV: ``viewmat``
world→camera [4, 4], ``K`` [3, 3], pixel centres at +0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@dataclass
class MeshRender:
    rgb: np.ndarray
    """[H, W, 3] float32 in [0, 1]."""
    alpha: np.ndarray
    """[H, W] float32 coverage (fractional where supersampled)."""
    depth: np.ndarray
    """[H, W] float32 camera-space z (inf where empty)."""
    face_id: np.ndarray
    """[H, W] int32 visible triangle (-1 where empty), at output resolution (centre sample)."""


@numba.njit(cache=True)
def _zbuffer(px, py, pz, faces, width, height, near):
    depth = np.full((height, width), np.inf, dtype=np.float32)
    fid = np.full((height, width), -1, dtype=np.int32)
    bary = np.zeros((height, width, 3), dtype=np.float32)
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        if pz[a] < near or pz[b] < near or pz[c] < near:
            continue
        x0, y0, x1, y1, x2, y2 = px[a], py[a], px[b], py[b], px[c], py[c]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if abs(area) < 1e-12:
            continue
        xmin = max(int(np.floor(min(x0, x1, x2) - 0.5)), 0)
        xmax = min(int(np.ceil(max(x0, x1, x2) - 0.5)), width - 1)
        ymin = max(int(np.floor(min(y0, y1, y2) - 0.5)), 0)
        ymax = min(int(np.ceil(max(y0, y1, y2) - 0.5)), height - 1)
        inv_area = 1.0 / area
        for y in range(ymin, ymax + 1):
            sy = y + 0.5
            for x in range(xmin, xmax + 1):
                sx = x + 0.5
                w0 = ((x1 - sx) * (y2 - sy) - (x2 - sx) * (y1 - sy)) * inv_area
                w1 = ((x2 - sx) * (y0 - sy) - (x0 - sx) * (y2 - sy)) * inv_area
                w2 = 1.0 - w0 - w1
                if w0 < 0 or w1 < 0 or w2 < 0:
                    continue
                # perspective-correct: interpolate 1/z in screen space
                iz = w0 / pz[a] + w1 / pz[b] + w2 / pz[c]
                z = 1.0 / iz
                if z < depth[y, x]:
                    depth[y, x] = z
                    fid[y, x] = f
                    bary[y, x, 0] = w0 / pz[a] * z
                    bary[y, x, 1] = w1 / pz[b] * z
                    bary[y, x, 2] = w2 / pz[c] * z
    return depth, fid, bary


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals. vertices: [V, 3], faces: [F, 3] → [V, 3]."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], fn)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def _sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup. texture: [Ht, Wt, 3]; uv: [N, 2] in [0, 1], v=0 at the top row → [N, 3]."""
    ht, wt = texture.shape[:2]
    x = np.clip(uv[:, 0] * wt - 0.5, 0, wt - 1)
    y = np.clip(uv[:, 1] * ht - 0.5, 0, ht - 1)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, wt - 1), np.minimum(y0 + 1, ht - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = texture[y0, x0] * (1 - fx) + texture[y0, x1] * fx
    bottom = texture[y1, x0] * (1 - fx) + texture[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    viewmat: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    *,
    vertex_colors: np.ndarray | None = None,
    uvs: np.ndarray | None = None,
    uv_faces: np.ndarray | None = None,
    texture: np.ndarray | None = None,
    shading: float = 0.6,
    light_dir: tuple[float, float, float] = (0.3, -0.4, -1.0),
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    supersample: int = 2,
    near: float = 0.01,
) -> MeshRender:
    """Render a triangle mesh.

    vertices: [V, 3] world; faces: [F, 3]; viewmat: [4, 4] world→camera (OpenCV);
    K: [3, 3]. Colour comes from ``texture`` [Ht, Wt, 3] (float in [0, 1]) with
    ``uvs`` [Vt, 2] / ``uv_faces`` [F, 3], else ``vertex_colors`` [V, 3], else grey.
    ``shading`` mixes in Lambert shading (0 = flat albedo, 1 = fully lit), with
    ``light_dir`` in camera space (pointing from the light into the scene).
    ``supersample`` renders at k× resolution and box-filters down (anti-aliasing).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    s = int(supersample)
    cam = vertices @ viewmat[:3, :3].T + viewmat[:3, 3]
    z = cam[:, 2]
    safe_z = np.where(np.abs(z) < 1e-9, 1e-9, z)
    px = (K[0, 0] * cam[:, 0] / safe_z + K[0, 2]) * s
    py = (K[1, 1] * cam[:, 1] / safe_z + K[1, 2]) * s
    depth, fid, bary = _zbuffer(px, py, z, faces, width * s, height * s, near)

    covered = fid >= 0
    rgb = np.empty((height * s, width * s, 3), dtype=np.float32)
    rgb[:] = np.asarray(background, dtype=np.float32)
    if covered.any():
        f = fid[covered]
        w = bary[covered].astype(np.float64)
        if texture is not None:
            uv = (uvs[uv_faces[f]] * w[:, :, None]).sum(1)
            albedo = _sample_texture(np.asarray(texture, dtype=np.float32), uv)
        elif vertex_colors is not None:
            albedo = (np.asarray(vertex_colors)[faces[f]] * w[:, :, None]).sum(1)
        else:
            albedo = np.full((len(f), 3), 0.75)
        if shading > 0:
            normals_cam = vertex_normals(cam, faces)
            n = (normals_cam[faces[f]] * w[:, :, None]).sum(1)
            n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
            light = -np.asarray(light_dir, dtype=np.float64)
            light /= np.linalg.norm(light)
            lambert = np.abs(n @ light)  # two-sided: interiors (mouth) are lit too
            albedo = albedo * ((1 - shading) + shading * (0.35 + 0.65 * lambert))[:, None]
        rgb[covered] = np.clip(albedo, 0, 1)

    alpha = covered.astype(np.float32)
    if s > 1:
        rgb = rgb.reshape(height, s, width, s, 3).mean((1, 3))
        alpha = alpha.reshape(height, s, width, s).mean((1, 3))
        depth = depth[s // 2 :: s, s // 2 :: s]
        fid = fid[s // 2 :: s, s // 2 :: s]
    return MeshRender(rgb=rgb.astype(np.float32), alpha=alpha, depth=depth.astype(np.float32), face_id=fid)
