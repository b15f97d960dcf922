"""Build the built-in default head: ``head/assets/default_head.npz`` (+ its texture).

Deterministic: mediapipe's own face-mesh topology and its 3D landmarks on the
public-domain photographs that scikit-image and matplotlib ship, symmetrized
and closed into a full head with a procedural skull, ears, neck, eyeballs,
mouth cavity and teeth; jaw/eye joints with smooth skinning weights; 16 identity
and 26 named expression components, Löwdin-orthogonalized.

    python scripts/build_default_head.py [--out head/assets]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from headgen import assemble, blend, face, mesh, texture  # noqa: E402

from splattalk.head.default import EXPR_NAMES, MODEL_ID  # noqa: E402


def landmark_embedding(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of the 478 landmarks is vertex i: any face containing it, with a one-hot barycentric."""
    face_ids, bary = np.zeros(478, np.int64), np.zeros((478, 3), np.float32)
    for i in range(478):
        fi = int(np.nonzero((faces == i).any(1))[0][0])
        face_ids[i] = fi
        bary[i, list(faces[fi]).index(i)] = 1.0
    return face_ids, bary


def regions(head: assemble.Head, rig: blend.Rig) -> dict[str, np.ndarray]:
    v, g = head.vertices, head.groups
    lip_ids = (
        list(g["mouth_loop"]) + assemble.OUTER_UPPER_LIP + assemble.OUTER_LOWER_LIP + list(assemble.MOUTH_CORNERS_OUTER)
    )
    outer = np.array(assemble.OUTER_UPPER_LIP + assemble.OUTER_LOWER_LIP + list(assemble.MOUTH_CORNERS_OUTER))
    # lips: face vertices between the inner loop and the outer lip contour (geodesically near both)
    d_inner = rig.geodesic(g["mouth_loop"])
    d_outer = rig.geodesic(outer)
    face = g["face"]
    lips = face[(d_inner[face] <= d_inner[outer].max() + 1e-4) & (d_outer[face] < 0.006)]
    lips = np.union1d(lips, lip_ids)
    y_eye = v[[468, 473], 1].mean()
    upper_face = face[v[face, 1] > y_eye - 0.012]
    skull = g["skull"]
    scalp = skull[v[skull, 1] > -0.01]
    return {
        "face": face,
        "lips": lips,
        "upper_face": upper_face,
        "eyes": np.concatenate([g["eyeball_left"], g["eyeball_right"]]),
        "eyeball_left": g["eyeball_left"],
        "eyeball_right": g["eyeball_right"],
        "lid_upper_left": g["lid_upper_left"],
        "lid_upper_right": g["lid_upper_right"],
        "lid_lower_left": g["lid_lower_left"],
        "lid_lower_right": g["lid_lower_right"],
        "mouth_interior": np.concatenate([g["cavity"], g["teeth_upper"], g["teeth_lower"]]),
        "teeth": np.concatenate([g["teeth_upper"], g["teeth_lower"]]),
        "scalp": scalp,
        "skull": skull,
        "neck": g["neck"],
        "ears": g["ears"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "head" / "assets")
    args = parser.parse_args()
    t0 = time.time()
    est = face.estimate_face()
    head = assemble.build_head(est)
    rig = blend.Rig(head)
    weights, regressor = blend.skinning(rig)
    expr, names = blend.expression_basis(rig, weights[:, blend.JAW])
    assert tuple(names) == EXPR_NAMES
    expr = blend.orthogonalize(expr, [names.index(n) for n in blend.EXPR_PRIORITY])
    shape = blend.orthogonalize(blend.shape_basis(rig))
    uvs, uv_faces, box = texture.layout(head)
    atlas = texture.paint_atlas(head, box, est.photo)
    lmk_faces, lmk_bary = landmark_embedding(head.faces)
    regs = regions(head, rig)

    arrays = {
        "v_template": head.vertices.astype(np.float32),
        "faces": head.faces.astype(np.int32),
        "shapedirs": shape.astype(np.float32),
        "exprdirs": expr.astype(np.float32),
        "J_regressor": regressor.astype(np.float32),
        "parents": blend.PARENTS.astype(np.int32),
        "lbs_weights": weights.astype(np.float32),
        "lmk_face_ids": lmk_faces.astype(np.int32),
        "lmk_bary": lmk_bary,
        "lmk_ids": np.arange(478, dtype=np.int32),
        "uvs": uvs.astype(np.float32),
        "uv_faces": uv_faces.astype(np.int32),
        "mirror": _vertex_mirror(head.vertices).astype(np.int32),
    }
    arrays.update({f"region_{k}": np.asarray(v, dtype=np.int32) for k, v in regs.items()})
    meta = {
        "model_id": MODEL_ID,
        "expr_names": list(EXPR_NAMES),
        "num_shape": int(shape.shape[-1]),
        "units": "metres; y up, +z where the face looks, +x the subject's left",
        "sources": (
            "mediapipe face-mesh topology + landmarks on skimage astronaut.png and matplotlib grace_hopper.jpg "
            "(public domain)"
        ),
        "closed_shell": bool(
            mesh.is_closed(
                head.faces[
                    mesh.components(head.faces, len(head.vertices))
                    == mesh.components(head.faces, len(head.vertices))[0]
                ]
            )
        ),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "default_head.npz"
    np.savez_compressed(out, meta_json=np.array(json.dumps(meta)), **arrays)
    cv2.imwrite(
        str(args.out / "default_head_texture.jpg"),
        (atlas[:, :, ::-1] * 255).round().astype(np.uint8),
        [cv2.IMWRITE_JPEG_QUALITY, 92],
    )
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {len(head.vertices)} vertices, {len(head.faces)} faces, "
        f"{shape.shape[-1]} shape + {expr.shape[-1]} expression components, in {time.time() - t0:.1f} s"
    )


def _vertex_mirror(v: np.ndarray) -> np.ndarray:
    """Left/right mirror partner of every vertex (the head is exactly symmetric by construction)."""
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(v).query(v * np.array([-1.0, 1.0, 1.0]))
    return np.where(dist < 1e-5, idx, -1)


if __name__ == "__main__":
    main()
