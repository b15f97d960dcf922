"""Small triangle-mesh tools for building the default head."""

from __future__ import annotations

import collections

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla


def orient(faces: np.ndarray, vertices: np.ndarray, outward: np.ndarray) -> np.ndarray:
    """Make faces consistently oriented (BFS over shared edges), normals agreeing with ``outward`` [3] on average."""
    faces = faces.copy()
    by_edge = collections.defaultdict(list)
    for i, f in enumerate(faces):
        for k in range(3):
            by_edge[frozenset((f[k], f[(k + 1) % 3]))].append(i)
    done = np.zeros(len(faces), bool)
    for seed in range(len(faces)):
        if done[seed]:
            continue
        done[seed] = True
        queue = collections.deque([seed])
        while queue:
            i = queue.popleft()
            f = faces[i]
            for k in range(3):
                a, b = f[k], f[(k + 1) % 3]
                for j in by_edge[frozenset((a, b))]:
                    if done[j]:
                        continue
                    g = faces[j]
                    # a consistent neighbour traverses the shared edge as b→a
                    if any(g[m] == a and g[(m + 1) % 3] == b for m in range(3)):
                        faces[j] = g[::-1]
                    done[j] = True
                    queue.append(j)
    if face_normals(vertices, faces).sum(0) @ outward < 0:
        faces = faces[:, ::-1]
    return np.ascontiguousarray(faces)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    return np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Ordered boundary loops, each following the faces' orientation."""
    directed = {(f[k], f[(k + 1) % 3]) for f in faces for k in range(3)}
    nxt = {a: b for a, b in directed if (b, a) not in directed}
    loops, seen = [], set()
    for start in list(nxt):
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        loops.append(np.array(loop))
    return loops


def subdivide(vertices: np.ndarray, faces: np.ndarray, extra: dict[str, np.ndarray] | None = None):
    """1→4 subdivision keeping every original vertex where it is.

    New edge points use Loop's odd rule (3/8, 3/8, 1/8, 1/8) inside and the
    midpoint on the boundary, so the surface gets smoother without moving the
    original (landmark) vertices. ``extra`` per-vertex arrays are interpolated
    at edge midpoints. Returns vertices, faces, extra.
    """
    edge_faces = collections.defaultdict(list)
    for f in faces:
        for k in range(3):
            edge_faces[tuple(sorted((f[k], f[(k + 1) % 3])))].append(f[(k + 2) % 3])
    index, new = {}, []
    n = len(vertices)
    for e, opposite in edge_faces.items():
        a, b = e
        if len(opposite) == 2:
            p = 0.375 * (vertices[a] + vertices[b]) + 0.125 * (vertices[opposite[0]] + vertices[opposite[1]])
        else:
            p = 0.5 * (vertices[a] + vertices[b])
        index[e] = n + len(new)
        new.append(p)
    out_faces = []
    for a, b, c in faces:
        ab, bc, ca = (index[tuple(sorted(e))] for e in ((a, b), (b, c), (c, a)))
        out_faces += [(a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca)]
    out_extra = {}
    for name, arr in (extra or {}).items():
        mids = np.array([0.5 * (arr[a] + arr[b]) for a, b in edge_faces])
        out_extra[name] = np.concatenate([arr, mids.reshape(-1, *arr.shape[1:])])
    return np.concatenate([vertices, np.array(new)]), np.array(out_faces, dtype=np.int64), out_extra


def edge_graph(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """Sparse symmetric matrix of edge lengths."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    w = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
    n = len(vertices)
    g = sp.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(n, n))
    return (g + g.T).tocsr()


def geodesic(vertices: np.ndarray, faces: np.ndarray, sources) -> np.ndarray:
    """Shortest edge-path distance [V] from the nearest of ``sources``."""
    return csgraph.dijkstra(edge_graph(vertices, faces), indices=np.asarray(sources), min_only=True)


def laplacian(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """Graph Laplacian with inverse-edge-length weights (L = D - W)."""
    g = edge_graph(vertices, faces)
    w = g.copy()
    w.data = 1.0 / np.maximum(w.data, 1e-9)
    d = np.asarray(w.sum(1)).ravel()
    return (sp.diags(d) - w).tocsr()


def harmonic_field(lap: sp.csr_matrix, fixed: dict[int, np.ndarray], free: np.ndarray, order: int = 2) -> np.ndarray:
    """Smoothly interpolate values given at ``fixed`` vertices over the ``free`` ones.

    Vertices neither fixed nor free stay zero. order 1 solves L x = 0 (harmonic),
    order 2 solves L² x = 0 (biharmonic: smoother falloff, no kinks at constraints).
    Returns [V, C].
    """
    n = lap.shape[0]
    first = next(iter(fixed.values()))
    values = np.zeros((n, np.size(first)))
    for i, v in fixed.items():
        values[i] = v
    free = np.asarray(free)
    free = free[~np.isin(free, list(fixed))]
    if len(free) == 0:
        return values
    op = lap if order == 1 else (lap @ lap)
    op = op.tocsr()
    known = np.setdiff1d(np.arange(n), free)
    a = op[free][:, free].tocsc()
    b = -op[free][:, known] @ values[known]
    values[free] = spla.spsolve(a, b).reshape(len(free), -1)
    return values


def smooth(
    vertices: np.ndarray, faces: np.ndarray, movable: np.ndarray, iterations: int = 10, step: float = 0.5
) -> np.ndarray:
    """Laplacian smoothing of the ``movable`` vertices only."""
    g = edge_graph(vertices, faces)
    g.data[:] = 1.0
    deg = np.asarray(g.sum(1)).ravel()
    out = vertices.copy()
    for _ in range(iterations):
        avg = (g @ out) / deg[:, None]
        out[movable] += step * (avg[movable] - out[movable])
    return out


def components(faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Connected-component label of each face [F]."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    g = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(num_vertices, num_vertices))
    _, labels = csgraph.connected_components(g, directed=False)
    return labels[faces[:, 0]]


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    tri = vertices[faces]
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Consistently orient every connected component so that its enclosed volume is positive (normals outward)."""
    out = faces.copy()
    labels = components(faces, len(vertices))
    for c in np.unique(labels):
        sel = labels == c
        part = orient(faces[sel], vertices, np.zeros(3) + [0, 0, 1.0])
        if signed_volume(vertices, part) < 0:
            part = part[:, ::-1]
        out[sel] = part
    return np.ascontiguousarray(out)


def is_closed(faces: np.ndarray) -> bool:
    """Every edge is shared by exactly two faces, traversed in opposite directions."""
    directed = [(f[k], f[(k + 1) % 3]) for f in faces for k in range(3)]
    s = set(directed)
    return len(s) == len(directed) and all((b, a) in s for a, b in directed)
