"""``splattalk doctor``: what was found, what is missing, and where to put it."""

from __future__ import annotations

import importlib.util
import shutil

from splattalk import assets
from splattalk.commands import DoctorCommand
from splattalk.errors import SplattalkError
from splattalk.head import default as default_head
from splattalk.head import flame


def _line(ok: bool, name: str, detail: str) -> str:
    return f"  [{'ok' if ok else '--'}] {name:<28} {detail}"


def run(cmd: DoctorCommand) -> int:
    print(f"user assets folder: {assets.assets_dir()}  (set $SPLATTALK_ASSETS to change)")
    print("user-supplied assets (optional; embedded defaults are used without them):")
    for asset in assets.USER_ASSETS:
        path = asset.find()
        if path is None:
            print(_line(False, asset.filenames[0], f"not found — {asset.what}; get it from {asset.where}"))
            continue
        detail = str(path)
        if cmd.check_files:
            detail += "  " + _validate(asset, path)
        print(_line(True, asset.filenames[0], detail))
    for line in _other_flame_files(cmd.check_files):
        print(line)

    print("embedded defaults:")
    for name, path in _embedded():
        print(_line(path.exists(), name, str(path) if path.exists() else f"missing: {path} (regenerate with scripts/)"))

    print("backends:")
    cuda = _cuda()
    print(_line(cuda is not None, "CUDA", cuda or "not available: rendering and training use the CPU"))
    gsplat = importlib.util.find_spec("gsplat") is not None
    print(
        _line(
            gsplat,
            "gsplat",
            "installed" if gsplat else "not installed (pip install 'splattalk[gpu]' on a CUDA machine)",
        )
    )
    print(_line(True, "cpu rasterizer", "built in (numba)"))

    print("media tools:")
    for tool in ("ffmpeg", "ffprobe", "espeak-ng", "flite", "sox", "chromium"):
        where = shutil.which(tool)
        print(_line(where is not None, tool, where or "not on PATH"))
    try:
        import imageio_ffmpeg  # lazy: doctor reports a missing or broken install instead of failing

        print(_line(True, "imageio-ffmpeg", imageio_ffmpeg.get_ffmpeg_exe()))
    except Exception as err:  # noqa: BLE001 - report whatever went wrong
        print(_line(False, "imageio-ffmpeg", str(err)))
    return 0


def _other_flame_files(check: bool):
    """Lines for landmark files of other tools (smplx, VHAP) found next to the FLAME model: what each is for us."""
    for folder in (assets.assets_dir(), assets.assets_dir() / "flame"):
        vhap = folder / "landmark_embedding_with_eyes.npy"
        if vhap.is_file():
            detail = str(vhap)
            if check:
                try:
                    count = len(flame.load_vhap_embedding(vhap)["lmk_face_ids"])
                    detail += (
                        f"  valid (VHAP/GaussianAvatars, {count} points: 68 iBUG + eyes; "
                        "not used by our mediapipe tracker)"
                    )
                except SplattalkError as err:
                    detail += f"  INVALID: {err}"
            yield _line(True, vhap.name, detail)
        for name in ("flame_static_embedding.pkl", "flame_dynamic_embedding.npy"):
            if (folder / name).is_file():
                yield _line(
                    True, name, f"{folder / name}  (smplx's 68-point embedding; not used by our mediapipe tracker)"
                )


def _embedded():
    yield "default head", default_head.ASSET_PATH


def _cuda() -> str | None:
    try:
        import torch  # lazy: doctor reports a missing or broken install instead of failing
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0)


def _validate(asset: assets.UserAsset, path) -> str:
    try:
        if asset.key == "flame" and path.suffix == ".pkl":
            model = flame.load_flame(path)
            reason = flame.release_reason(path)
            return f"valid ({model.model_id}, {model.num_vertices} vertices{'; ' + reason if reason else ''})"
        if asset.key == "flame" and path.suffix == ".npz":
            embedding = flame.load_mediapipe_embedding(path)
            return f"valid ({len(embedding['lmk_ids'])} landmarks)"
        if asset.key == "flame_masks":
            return f"valid ({len(flame.load_flame_masks(path))} regions)"
        if asset.key == "artalk":
            from splattalk.talk import checkpoint  # lazy: torch; an ImportError is reported, not raised

            checkpoint.load_official_state_dict(path)
            return "valid (strict key/shape check passed)"
    except SplattalkError as err:
        return f"INVALID: {err}"
    except ImportError:
        return "(validator not available in this build)"
    return ""
