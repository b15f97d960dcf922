"""Cut the foreground masks to the head: the avatar has no body, so the body is not its target.

A real clip's foreground matte (mediapipe selfie segmentation) holds the
shoulders, shirt and tie as well as the head. The Gaussians are bound to the
head mesh, which ends at the neck: fitted against the whole matte, the neck's
Gaussians stretch down to paint the shirt (streaks in the viewer, background
and clothing colours in the neck) and every shoulder pixel counts as error.
Here each frame's matte is multiplied by the tracked mesh's silhouette (the
triangles that carry Gaussians, projected through the camera), grown by a
margin for hair and ears the mesh does not model; the targets are re-composited
onto the background through the cut matte.
"""

from __future__ import annotations

import numpy as np
import torch

from splattalk.avatar.face_parts import LEFT_EYE, RIGHT_EYE

HAIR_MARGIN = 0.08
"""The silhouette grows by this fraction of its own size (sqrt of its area): hair volume and loose ear edges."""
FEATHER_PX = 4
"""Width of the soft edge where the cut meets the matte (pixels at the fitting resolution)."""


NECK_FRACTION = 0.4
"""How far below the chin the kept neck reaches, as a fraction of the chin-to-eyes height (to about the collar;
the head model's neck runs on into the chest, where a real clip shows clothes)."""
CHIN = 152
"""mediapipe's chin-tip landmark."""


def head_faces(head, shape: torch.Tensor, carry: np.ndarray, neck_fraction: float = NECK_FRACTION) -> np.ndarray:
    """Triangles [F', 3] of the head down to ``neck_fraction`` × chin-to-eyes below the chin (on the rest mesh,
    y up), among those that ``carry`` [F] bool; all carried ones when the model embeds no chin and eye landmarks."""

    faces = head.faces_np[carry]
    ids = head.lmk_ids.cpu().numpy() if torch.is_tensor(head.lmk_ids) else np.asarray(head.lmk_ids)
    where = {int(m): i for i, m in enumerate(ids)}
    eyes = [where[i] for i in RIGHT_EYE + LEFT_EYE if i in where]
    if CHIN not in where or not eyes:
        return faces
    with torch.no_grad():
        out = head(shape=shape)
    lmk, rest = out.landmarks[0].cpu().numpy(), out.vertices[0].cpu().numpy()
    chin_y, eye_y = lmk[where[CHIN], 1], lmk[eyes, 1].mean()
    floor = chin_y - neck_fraction * (eye_y - chin_y)
    return faces[(rest[faces, 1] >= floor).all(1)]


SILHOUETTE_SCALE = 4
"""The silhouette is drawn at 1/this of the frame's resolution and scaled back up (it is grown and softened
anyway): a frame costs ~milliseconds, not the ~0.25 s of filling every triangle at 512²."""


def mesh_silhouette(
    vertices: np.ndarray, faces: np.ndarray, viewmat: np.ndarray, K: np.ndarray, width: int, height: int
) -> np.ndarray:
    """[H, W] uint8 (0/1) approximate coverage of triangles ``faces`` [F, 3] of ``vertices`` [V, 3] (world) seen by
    the camera (``viewmat`` [4, 4] world→camera OpenCV, ``K`` [3, 3]), at the given size.

    The triangles' corners, edge midpoints and centroids are splatted as points and the gaps closed
    morphologically: exact to about a pixel for a mesh as dense as a head model's face."""
    import cv2

    tri = vertices[faces]  # [F, 3, 3]
    points = np.concatenate([vertices[np.unique(faces)], tri.mean(1), (tri + tri[:, [1, 2, 0]]).reshape(-1, 3) / 2])
    cam = points @ viewmat[:3, :3].T + viewmat[:3, 3]
    cam = cam[cam[:, 2] > 1e-6]
    uv = cam @ K.T
    uv = uv[:, :2] / uv[:, 2:3]
    u, v = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    mask = np.zeros((height, width), np.uint8)
    mask[v[inside], u[inside]] = 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)


def head_cut(
    vertices: np.ndarray,
    faces: np.ndarray,
    viewmat: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    margin: float = HAIR_MARGIN,
    feather: int = FEATHER_PX,
) -> np.ndarray:
    """[H, W] float32 in [0, 1]: the mesh silhouette grown by ``margin`` × its size (sqrt of its area), with a
    soft edge about ``feather`` pixels wide."""
    import cv2

    small_k = K.copy()
    small_k[:2] /= SILHOUETTE_SCALE
    sw, sh = -(-width // SILHOUETTE_SCALE), -(-height // SILHOUETTE_SCALE)
    sil = mesh_silhouette(vertices, faces, viewmat, small_k, sw, sh)
    grow = max(1, round(margin * float(np.sqrt(sil.sum()))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    cut = cv2.dilate(sil, kernel).astype(np.float32)
    # back to full size: bilinear upsampling of the block mask gives an edge ~SILHOUETTE_SCALE pixels wide
    cut = cv2.resize(cut, (sw * SILHOUETTE_SCALE, sh * SILHOUETTE_SCALE), interpolation=cv2.INTER_LINEAR)[
        :height, :width
    ]
    if feather > SILHOUETTE_SCALE:
        cut = cv2.GaussianBlur(cut, (0, 0), feather / 2.0)
    return np.clip(cut, 0.0, 1.0)


def cut_to_head(
    targets: torch.Tensor,
    masks: torch.Tensor,
    background: torch.Tensor,
    vertices: torch.Tensor,
    faces: np.ndarray,
    viewmat: torch.Tensor,
    K: torch.Tensor,
    margin: float = HAIR_MARGIN,
    frames=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets [T, H, W, 3] uint8 and masks [T, H, W] uint8 (composited through them onto ``background`` [3])
    with everything outside each frame's grown head silhouette (``vertices`` [T, V, 3]) moved to the background.

    Exact for composited targets: with target = a·frame + (1 − a)·bg and the cut c, the new target
    c·target + (1 − c)·bg equals (a·c)·frame + (1 − a·c)·bg. ``frames``: only these indices (others unchanged)."""
    targets, masks = targets.clone(), masks.clone()
    height, width = masks.shape[1:]
    vm, k = viewmat.double().numpy(), K.double().numpy()
    bg = background.float().numpy() * 255.0
    for t in range(len(masks)) if frames is None else frames:
        cut = head_cut(vertices[t].double().cpu().numpy(), faces, vm, k, width, height, margin)
        c = cut[..., None]
        new = targets[t].float().numpy() * c + bg * (1.0 - c)
        targets[t] = torch.from_numpy(np.clip(new + 0.5, 0, 255).astype(np.uint8))
        masks[t] = torch.from_numpy(np.clip(masks[t].float().numpy() * cut + 0.5, 0, 255).astype(np.uint8))
    return targets, masks
