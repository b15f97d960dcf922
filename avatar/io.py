"""Avatar files: ``avatar.safetensors`` (everything needed to animate) and the standard 3DGS ``.ply``.

The ``.ply`` follows the layout of the original 3D Gaussian Splatting code:
x y z, nx ny nz, f_dc_0..2, f_rest_* (channel-major), opacity (logit),
scale_0..2 (log), rot_0..3 (wxyz). It is written at SH degree 3 by default
(45 ``f_rest_*``, the bands above the avatar's own degree zero), because the
original loader asserts ``len(f_rest) == 3 * (max_sh_degree + 1)**2 - 3`` with
``max_sh_degree`` 3 unless told otherwise; docs/interop.md lists the readers checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from splattalk import assets
from splattalk.atomic import atomic_path
from splattalk.avatar.binding import BoundGaussians
from splattalk.avatar.gaussians import Gaussians
from splattalk.avatar.model import Avatar
from splattalk.errors import SplattalkError
from splattalk.head import default, flame

FORMAT = "splattalk-avatar"
FORMAT_VERSION = 1


def save_avatar(path: str | Path, avatar) -> None:
    """Write ``avatar.safetensors`` atomically: bound Gaussians, identity shape, head model id, config."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in avatar.gaussians.tensors().items()}
    tensors["shape"] = avatar.shape.detach().contiguous().cpu()
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "head_model": avatar.head.model_id,
        "config": json.dumps(avatar.config, default=str),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_avatar(path: str | Path, head=None):
    """Read an avatar; the head model is loaded by its id (the built-in head, or the user's FLAME file)."""
    path = Path(path)
    if not path.is_file():
        raise SplattalkError(f"no avatar at {path}: run `splattalk fit RUN` first")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises several types for corrupt files
        raise SplattalkError(f"{path} is not a readable avatar file ({err}); refit with `splattalk fit`") from None
    if meta.get("format") != FORMAT:
        raise SplattalkError(f"{path} is not a splattalk avatar (format tag {meta.get('format')!r})")
    missing = [k for k in ("parent", *BoundGaussians.TRAINABLE, "shape") if k not in tensors]
    if missing:
        raise SplattalkError(
            f"{path} is missing {', '.join(missing)}; the file is damaged — refit with `splattalk fit`"
        )
    head = head or load_head_model(meta["head_model"])
    if head.model_id != meta["head_model"]:
        raise SplattalkError(f"{path} was fitted on head model {meta['head_model']!r}, not {head.model_id!r}")
    bound = BoundGaussians(**{k: tensors[k] for k in ("parent", *BoundGaussians.TRAINABLE)})
    if int(bound.parent.max()) >= head.faces.shape[0] or int(bound.parent.min()) < 0:
        raise SplattalkError(f"{path} binds Gaussians to triangles its head model {head.model_id!r} does not have")
    return Avatar(head=head, shape=tensors["shape"], gaussians=bound, config=json.loads(meta.get("config", "{}")))


def load_head_model(model_id: str):
    """The head model an avatar or a track names: the built-in head, or the user's FLAME file."""
    if model_id == default.MODEL_ID:
        return default.load_default_head()
    if model_id.startswith("flame"):
        asset = assets.FLAME_2020 if model_id == "flame2020" else assets.FLAME_2023
        path = asset.find()
        if path is None:
            raise SplattalkError(f"this needs the {asset.what}; put it in {assets.assets_dir()} ({asset.where})")
        return flame.load_flame(path, assets.FLAME_MEDIAPIPE_EMBEDDING.find(), version=model_id)
    raise SplattalkError(f"unknown head model {model_id!r}")


# --------------------------------------------------------------------------- .ply


def _ply_fields(num_rest: int) -> list[str]:
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(num_rest)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )


PLY_SH_DEGREE = 3
"""SH degree of the written .ply: the original 3DGS code's default ``--sh_degree``."""


def save_ply(path: str | Path, gaussians: Gaussians, sh_degree: int = PLY_SH_DEGREE) -> None:
    """One frame of Gaussians as a binary little-endian 3DGS .ply (activations inverted: logit opacity, log scale).

    sh_degree: degree of the file's layout (0..3); bands above the Gaussians' own
    degree are written as zeros. A lower degree than the Gaussians' is refused.
    """
    g = gaussians
    n = g.num
    sh = g.sh.detach().cpu().numpy().astype(np.float32)
    if not 0 <= sh_degree <= 3:
        raise SplattalkError(f"--sh-degree {sh_degree}: the 3DGS .ply layout has degrees 0 to 3")
    if sh_degree < g.sh_degree:
        raise SplattalkError(
            f"the Gaussians have SH degree {g.sh_degree}; writing degree {sh_degree} would drop colour detail. "
            f"Use sh_degree >= {g.sh_degree}."
        )
    padded = np.zeros((n, (sh_degree + 1) ** 2, 3), np.float32)
    padded[:, : sh.shape[1]] = sh
    sh = padded
    rest = sh[:, 1:, :].transpose(0, 2, 1).reshape(n, -1)  # channel-major, as 3DGS writes it
    opac = g.opacities.detach().cpu().numpy().astype(np.float64).clip(1e-7, 1 - 1e-7)
    columns = [
        g.means.detach().cpu().numpy(),
        np.zeros((n, 3), np.float32),
        sh[:, 0, :],
        rest,
        np.log(opac / (1 - opac))[:, None],
        np.log(g.scales.detach().cpu().numpy().clip(1e-30)),
        g.quats.detach().cpu().numpy(),
    ]
    data = np.concatenate([c.astype(np.float32).reshape(n, -1) for c in columns], axis=1)
    names = _ply_fields(rest.shape[1])
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property float {name}" for name in names] + ["end_header"]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(np.ascontiguousarray(data, dtype="<f4").tobytes())


def load_ply(path: str | Path) -> Gaussians:
    """Read a 3DGS .ply (ours or another tool's) into Gaussians.

    Trailing SH bands that are exactly zero (the padding :func:`save_ply` writes)
    are dropped, so a file renders the same and round-trips to the degree it was fitted at.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SplattalkError(f"cannot read {path}: {err}") from None
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply\n") or end < 0:
        raise SplattalkError(f"{path} is not a .ply file")
    lines = raw[:end].decode("ascii", errors="replace").splitlines()
    if "format binary_little_endian 1.0" not in lines:
        raise SplattalkError(f"{path}: only binary little-endian .ply files are supported")
    count, props = None, []
    for line in lines:
        parts = line.split()
        if parts[:2] == ["element", "vertex"]:
            count = int(parts[2])
        elif parts[:1] == ["element"] and count is not None:
            break  # other elements (faces…) are not Gaussians
        elif parts[:1] == ["property"] and count is not None:
            if parts[1] not in ("float", "float32"):
                raise SplattalkError(f"{path}: property {parts[-1]} is {parts[1]}, expected float")
            props.append(parts[2])
    needed = [
        "x",
        "y",
        "z",
        "f_dc_0",
        "f_dc_1",
        "f_dc_2",
        "opacity",
        "scale_0",
        "scale_1",
        "scale_2",
        "rot_0",
        "rot_1",
        "rot_2",
        "rot_3",
    ]
    missing = [p for p in needed if p not in props]
    if count is None or missing:
        raise SplattalkError(f"{path} is not a Gaussian-splat .ply (missing {', '.join(missing) or 'vertex element'})")
    body = raw[end + len(b"end_header\n") :]
    if len(body) < count * len(props) * 4:
        raise SplattalkError(f"{path} is truncated: {len(body)} bytes for {count} Gaussians")
    data = np.frombuffer(body, dtype="<f4", count=count * len(props)).reshape(count, len(props))
    col = {name: data[:, i] for i, name in enumerate(props)}
    rest_names = sorted((p for p in props if p.startswith("f_rest_")), key=lambda p: int(p.split("_")[-1]))
    k = 1 + len(rest_names) // 3
    sh = np.zeros((count, k, 3), np.float32)
    sh[:, 0] = np.stack([col[f"f_dc_{c}"] for c in range(3)], 1)
    if rest_names:
        sh[:, 1:] = np.stack([col[n] for n in rest_names], 1).reshape(count, 3, k - 1).transpose(0, 2, 1)
    degree = int(round(k**0.5)) - 1
    while degree > 0 and (degree + 1) ** 2 == sh.shape[1] and not sh[:, degree**2 :].any():
        sh = sh[:, : degree**2]
        degree -= 1
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return Gaussians(
        means=t(np.stack([col["x"], col["y"], col["z"]], 1)),
        quats=t(np.stack([col[f"rot_{i}"] for i in range(4)], 1)),
        scales=t(np.exp(np.stack([col[f"scale_{i}"] for i in range(3)], 1))),
        opacities=t(1 / (1 + np.exp(-col["opacity"].astype(np.float64)))),
        sh=t(sh),
    )
