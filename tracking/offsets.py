"""Static per-landmark offsets → a smooth displacement of the whole head mesh (``static_offset``).

The fit gives every landmark a small static rest-pose offset (identity detail
beyond the shape space; VHAP calls the per-vertex version ``static_offset``).
Here the landmarks' offsets are placed on their vertices and spread over the
surrounding surface by harmonic interpolation on the mesh graph, fading to zero
within ``radius`` of the landmarks; rigid inner parts (eyeballs, teeth, mouth
cavity) stay put. ``personalized_head`` bakes it into a head model.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve
from scipy.spatial import cKDTree

from splattalk.head.model import HeadModel

RIGID_REGIONS = ("eyeball_left", "eyeball_right", "teeth", "mouth_interior")
"""Default-head regions that never take an offset."""


def static_offset_field(model, landmark_offsets: np.ndarray, radius: float = 0.015) -> np.ndarray:
    """Per-vertex offsets [V, 3] (metres) from per-landmark offsets [L, 3] of ``model``."""
    faces = model.faces.numpy()
    verts = model.v_template.numpy().astype(np.float64)
    num = len(verts)
    bary = model.lmk_bary.numpy().astype(np.float64)
    corners = faces[model.lmk_face_ids.numpy()]
    total = np.zeros((num, 3))
    weight = np.zeros(num)
    for c in range(3):
        np.add.at(total, corners[:, c], bary[:, c, None] * landmark_offsets)
        np.add.at(weight, corners[:, c], bary[:, c])
    known = weight > 1e-6
    values = np.zeros((num, 3))
    values[known] = total[known] / weight[known, None]

    distance, _ = cKDTree(verts[known]).query(verts)
    fixed_zero = distance > radius
    for name in RIGID_REGIONS:
        if name in model.regions:
            fixed_zero[model.regions[name]] = True
    fixed_zero &= ~known
    free = ~(known | fixed_zero)
    if not free.any():
        return values.astype(np.float32)

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, 1), axis=0)
    adjacency = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(num, num))
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.float64).tocsr()
    laplacian = sp.diags(np.asarray(adjacency.sum(1)).ravel()) - adjacency
    idx_free = np.nonzero(free)[0]
    lap_ff = laplacian[idx_free][:, idx_free].tocsc()
    rhs = -(laplacian[idx_free] @ values)
    # isolated free vertices (no path to a constraint) would make the system singular: pin them
    lap_ff = lap_ff + sp.identity(len(idx_free), format="csc") * 1e-9
    values[idx_free] = np.column_stack([spsolve(lap_ff, rhs[:, k]) for k in range(3)])
    return values.astype(np.float32)


def personalized_head(model, static_offset: np.ndarray | None):
    """A copy of ``model`` whose template carries ``static_offset`` [V, 3] (None: the model itself)."""
    if static_offset is None or not np.any(static_offset):
        return model

    arrays = model.to_arrays()
    arrays["v_template"] = arrays["v_template"] + np.asarray(static_offset, np.float32)
    return HeadModel(arrays, model_id=model.model_id, expr_names=model.expr_names, regions=model.regions)
