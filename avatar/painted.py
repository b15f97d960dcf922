"""An avatar without training: Gaussians painted onto the default head (the embedded default avatar).

``splattalk view`` with no RUN shows this avatar (``scripts/make_default_avatar.py``
writes it). Each Gaussian sits on a triangle of the default head (area-uniform,
deterministic), lies flat along it (small extent along the normal), and takes the
texture atlas's colour at its UV, with a little baked front-light shading so the face
reads as a shape. It is a stand-in until a fitted avatar ships; ``avatar.fit``
produces real ones.
"""

from __future__ import annotations

import numpy as np
import torch

from splattalk.avatar import quaternion
from splattalk.avatar.binding import BoundGaussians, bind_world_gaussians, face_frames
from splattalk.avatar.gaussians import rgb_to_sh_dc
from splattalk.avatar.model import Avatar
from splattalk.head.default import load_default_head, load_texture

LIGHT = np.array([0.3, 0.5, 1.0]) / np.linalg.norm([0.3, 0.5, 1.0])
"""Direction towards the baked light (world: y up, the face looks along +z)."""


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup; texture [H, W, 3], uv [N, 2] with v = 0 at the top row → [N, 3]."""
    h, w = texture.shape[:2]
    x = np.clip(uv[:, 0] * w - 0.5, 0, w - 1)
    y = np.clip(uv[:, 1] * h - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = texture[y0, x0] * (1 - fx) + texture[y0, x1] * fx
    bottom = texture[y1, x0] * (1 - fx) + texture[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


DENSITY = {
    "face": 3.0,
    "lips": 6.0,
    "eyes": 8.0,
    "eyeball_left": 8.0,
    "eyeball_right": 8.0,
    "lid_upper_left": 8.0,
    "lid_upper_right": 8.0,
    "lid_lower_left": 8.0,
    "lid_lower_right": 8.0,
    "teeth": 3.0,
}
"""Gaussians per unit area relative to the rest of the head (scalp, neck, ears: 1), by head region:
small features (eyes, lips) need small, dense Gaussians."""


def build_default_avatar(num: int = 20_000, seed: int = 0, flatness: float = 0.15, overlap: float = 1.0) -> Avatar:
    """An avatar of ``num`` Gaussians on the default head's rest pose (zero shape).

    Density per area follows :data:`DENSITY`. ``overlap``: in-plane standard
    deviation in units of the local spacing between Gaussians; ``flatness``:
    extent along the normal relative to it.
    """
    head = load_default_head()
    texture = load_texture()
    rng = np.random.default_rng(seed)
    vertices = head.v_template.numpy().astype(np.float64)
    faces = head.faces.numpy()
    tri = vertices[faces]  # [F, 3, 3]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(normal, axis=1)
    density = np.ones(len(faces))
    for region, weight in DENSITY.items():
        vertex_ids = head.regions.get(region)
        if vertex_ids is not None and len(vertex_ids):
            inside = np.isin(faces, vertex_ids).sum(1) >= 2
            density[inside] = np.maximum(density[inside], weight)
    mass = area * density
    parent = rng.choice(len(faces), size=num, p=mass / mass.sum())
    parent.sort()  # neighbours in memory: friendlier to every per-Gaussian loop
    r1, r2 = rng.random(num), rng.random(num)
    bary = np.stack([1 - np.sqrt(r1), np.sqrt(r1) * (1 - r2), np.sqrt(r1) * r2], 1)
    means = (tri[parent] * bary[:, :, None]).sum(1)

    uv = (head.uvs.numpy()[head.uv_faces.numpy()[parent]] * bary[:, :, None]).sum(1)
    albedo = sample_texture(texture, uv)
    unit_normal = normal[parent] / np.maximum(2 * area[parent, None], 1e-20)
    shade = 0.8 + 0.25 * np.clip(unit_normal @ LIGHT, 0, 1)
    rgb = np.clip(albedo * shade[:, None], 0, 1)

    sigma = overlap * np.sqrt(mass.sum() / (num * density[parent]))  # local spacing: area per Gaussian
    scales = np.stack([sigma, sigma, flatness * sigma], 1)
    frames = face_frames(torch.from_numpy(vertices).float(), head.faces)
    # Each Gaussian takes its triangle's frame as its rotation: the thin axis along the normal.
    world_q = quaternion.from_matrix(frames.rotation[torch.from_numpy(parent)])
    local_means, local_quats, log_scales = bind_world_gaussians(
        torch.from_numpy(means).float(), world_q, torch.from_numpy(scales).float(), torch.from_numpy(parent), frames
    )
    bound = BoundGaussians(
        parent=torch.from_numpy(parent.astype(np.int64)),
        local_means=local_means,
        local_quats=local_quats,
        log_scales=log_scales,
        opacity_logits=torch.full((num,), float(np.log(0.97 / 0.03))),
        sh=rgb_to_sh_dc(torch.from_numpy(rgb).float())[:, None, :],
    )
    config = {
        "source": "scripts/make_default_avatar.py",
        "num": num,
        "seed": seed,
        "flatness": flatness,
        "overlap": overlap,
    }
    return Avatar(head=head, shape=torch.zeros(head.num_shape), gaussians=bound, config=config)
