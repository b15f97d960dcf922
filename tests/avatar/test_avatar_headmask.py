"""Cutting the foreground mask to the tracked head: silhouette, neck floor, and the re-compositing."""

import numpy as np
import torch

from splattalk.avatar.headmask import SILHOUETTE_SCALE, cut_to_head, head_cut, head_faces, mesh_silhouette
from splattalk.avatar.init import face_regions
from splattalk.head.default import load_default_head

VIEW = torch.tensor([[1.0, 0, 0, 0], [0, -1, 0, 0.02], [0, 0, -1, 0.55], [0, 0, 0, 1]], dtype=torch.float64)
K = torch.tensor([[700.0, 0, 128], [0, 700, 128], [0, 0, 1]], dtype=torch.float64)


def head_and_faces():
    head = load_default_head()
    carry, _ = face_regions(head)
    shape = torch.zeros(head.num_shape)
    with torch.no_grad():
        rest = head(shape=shape).vertices[0].double().numpy()
    return head, carry, shape, rest


def test_silhouette_matches_filled_triangles():
    import cv2

    head, carry, shape, rest = head_and_faces()
    faces = head_faces(head, shape, carry)
    vm, k = VIEW.numpy(), K.numpy()
    exact = np.zeros((256, 256), np.uint8)
    uv = (rest @ vm[:3, :3].T + vm[:3, 3]) @ k.T
    uv = uv[:, :2] / uv[:, 2:3]
    for p in np.round((uv[faces] - 0.5) * 16).astype(np.int32):
        cv2.fillConvexPoly(exact, p, 1, shift=4)
    small = k.copy()
    small[:2] /= SILHOUETTE_SCALE
    s = 256 // SILHOUETTE_SCALE
    approx = cv2.resize(mesh_silhouette(rest, faces, vm, small, s, s), (256, 256), interpolation=cv2.INTER_NEAREST)
    assert exact.sum() > 5000
    assert (approx != exact).sum() < 0.08 * exact.sum()


def test_neck_floor_drops_the_chest_end_of_the_neck():
    head, carry, shape, rest = head_and_faces()
    kept = head_faces(head, shape, carry)
    all_carried = head.faces_np[carry]
    assert 0.5 * len(all_carried) < len(kept) < len(all_carried)
    assert rest[kept, 1].min() > rest[all_carried, 1].min() + 0.01  # a centimetre and more of neck cut off
    assert rest[kept, 1].max() == rest[all_carried, 1].max()  # the top of the head stays


def test_cut_keeps_the_head_and_moves_the_rest_to_the_background():
    head, carry, shape, rest = head_and_faces()
    faces = head_faces(head, shape, carry)
    g = torch.Generator().manual_seed(0)
    targets = (torch.rand(2, 256, 256, 3, generator=g) * 255).to(torch.uint8)
    masks = torch.full((2, 256, 256), 255, dtype=torch.uint8)
    background = torch.tensor([0.2, 0.4, 0.6])
    vertices = torch.from_numpy(rest)[None].repeat(2, 1, 1)
    new_t, new_m = cut_to_head(targets, masks, background, vertices, faces, VIEW.float(), K.float(), frames=[1])
    assert torch.equal(new_t[0], targets[0]) and torch.equal(new_m[0], masks[0])  # frame 0 not asked for
    cut = head_cut(rest, faces, VIEW.numpy(), K.numpy(), 256, 256)
    inside, outside = torch.from_numpy(cut > 0.999), torch.from_numpy(cut < 0.001)
    assert inside.sum() > 5000 and outside.sum() > 5000
    assert torch.equal(new_t[1][inside], targets[1][inside]) and (new_m[1][inside] == 255).all()
    assert (new_m[1][outside] == 0).all()
    assert torch.allclose(new_t[1][outside].float(), background * 255, atol=0.6)
