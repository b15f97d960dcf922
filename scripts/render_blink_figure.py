"""A real blink through the pipeline: video frame | tracked mesh | avatar render, with open-eye neighbours.

    python scripts/render_blink_figure.py RUN --tracks NEW_TRACKS [--avatar AVATAR] [--out docs/tracking_blinks.png]

RUN is a tracked run folder with a fitted avatar (``RUN/avatar/avatar.safetensors`` unless ``--avatar``), tracked
before blinks were tuned; NEW_TRACKS is the same clip's ``tracks.npz`` fitted with the current settings
(``scripts/eval_blinks.py RUN --refit --save DIR``). For the deepest blinks mediapipe's lids show it draws three
rows (a few frames before, the closed frame, a few after), each cropped to the eyes: the video frame, the tracked
mesh (current settings), the avatar rendered with the old tracks and with the old tracks' blink coefficients
replaced by the new ones (everything else equal, so the eyelids are the only difference; the avatar itself was
fitted to the old tracks). It also prints the eye-region PSNR of both renders against the video at every blink
mediapipe shows and, as a control, at open-eye frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from splattalk.atomic import write_bytes
from splattalk.avatar.io import load_avatar
from splattalk.avatar.model import animate
from splattalk.avatar.view import Camera, render_gaussians
from splattalk.head.default import EXPR_NAMES, load_default_head
from splattalk.head.landmark_groups import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR
from splattalk.head.params import HeadParams
from splattalk.head.raster import render_mesh
from splattalk.run import RunLayout, Tracks
from splattalk.tracking.export import posed_vertices
from splattalk.tracking.eyes import eye_openness, find_blinks

BLINK = [EXPR_NAMES.index("blink_left"), EXPR_NAMES.index("blink_right")]
EYES = list(LEFT_EYE_CONTOUR + RIGHT_EYE_CONTOUR)


def eye_box(points: np.ndarray, grow: float = 0.35) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 around both eyes' contours [478, 2], grown by ``grow`` of the eye span."""
    p = points[EYES]
    lo, hi = p.min(0), p.max(0)
    pad = grow * (hi[0] - lo[0])
    return int(lo[0] - pad), int(lo[1] - pad), int(hi[0] + pad), int(hi[1] + pad)


def eye_psnr(render: np.ndarray, truth: np.ndarray, points: np.ndarray) -> float:
    """PSNR over the two eyes' boxes (each contour's box grown by half its width)."""
    errs = []
    for contour in (LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR):
        p = points[list(contour)]
        lo, hi = p.min(0), p.max(0)
        pad = 0.5 * (hi[0] - lo[0])
        x0, y0, x1, y1 = (int(v) for v in (lo[0] - pad, lo[1] - pad, hi[0] + pad, hi[1] + pad))
        errs.append(((render[y0:y1, x0:x1] - truth[y0:y1, x0:x1]) ** 2).reshape(-1))
    return float(10 * np.log10(1.0 / np.concatenate(errs).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--tracks", type=Path, required=True)
    parser.add_argument("--avatar", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/tracking_blinks.png"))
    parser.add_argument("--blinks", type=int, default=2, help="how many blinks to draw (the deepest)")
    parser.add_argument("--width", type=int, default=300, help="width of each panel in pixels")
    args = parser.parse_args()

    layout = RunLayout(args.run)
    old = Tracks.load(layout.tracks)
    new = Tracks.load(args.tracks)
    avatar = load_avatar(args.avatar or layout.avatar)
    model = load_default_head()
    size = int(avatar.config.get("resolution_wh", [old.width])[0])
    if size != old.width:
        raise SystemExit(f"the avatar renders at {size} px, the run's frames are {old.width}: use a 512² avatar")
    camera = Camera(
        torch.from_numpy(old.viewmat.astype(np.float32)), torch.from_numpy(old.K.astype(np.float32)), size, size
    )
    background = torch.tensor(avatar.config.get("background_rgb", (1.0, 1.0, 1.0)), dtype=torch.float32)
    eyelids = old.expr.copy()
    eyelids[:, BLINK] = new.expr[:, BLINK]
    variants = {
        "old": HeadParams(**old.per_frame()),
        "new": HeadParams(**(old.per_frame() | {"expr": eyelids})),
    }
    points = old.landmarks2d.astype(np.float64)

    def frame(t: int) -> np.ndarray:
        image = cv2.imread(str(layout.frame(t)), cv2.IMREAD_COLOR)
        return image[:, :, ::-1].astype(np.float32) / 255.0

    def render(t: int, which: str) -> np.ndarray:
        with torch.no_grad():
            g = animate(avatar, variants[which].slice(t)).frame(0)
            rgb, _ = render_gaussians(g, camera, background, avatar.config.get("backend", "auto"))
        return rgb.clamp(0, 1).numpy()

    def mesh(t: int) -> np.ndarray:
        vertices, _ = posed_vertices(model, new, slice(t, t + 1))
        out = render_mesh(
            vertices[0], model.faces_np, new.viewmat.astype(np.float64), new.K.astype(np.float64), size, size
        )
        return out.rgb

    blinks = find_blinks(eye_openness(points))
    open_frames = [t for t in range(len(old)) if all(abs(t - b.deepest) > 8 for b in blinks)][:: max(1, len(old) // 20)]
    scores = {"blink": {"old": [], "new": []}, "open": {"old": [], "new": []}}
    for kind, frames in (("blink", [b.deepest for b in blinks]), ("open", open_frames)):
        for t in frames:
            truth = frame(t)
            for which in ("old", "new"):
                scores[kind][which].append(eye_psnr(render(t, which), truth, points[t]))
    for kind, rows in scores.items():
        print(
            f"eye-region PSNR at {len(rows['old'])} {kind} frames: old tracks {np.mean(rows['old']):.2f} dB, "
            f"new eyelids {np.mean(rows['new']):.2f} dB"
        )

    chosen = sorted(blinks, key=lambda b: b.depth)[: args.blinks]
    rows = []
    for b in sorted(chosen, key=lambda b: b.deepest):
        for t in (b.start - 3, b.deepest, b.end + 3):
            x0, y0, x1, y1 = eye_box(points[b.deepest])
            panels = [frame(t), mesh(t), render(t, "old"), render(t, "new")]
            crops = []
            for image in panels:
                crop = image[max(y0, 0) : y1, max(x0, 0) : x1]
                height = int(round(crop.shape[0] * args.width / crop.shape[1]))
                crop = cv2.resize(crop, (args.width, height), interpolation=cv2.INTER_CUBIC)
                cv2.putText(crop, f"{t}", (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (1, 1, 0), 1, cv2.LINE_AA)
                crops.append(np.pad(crop, ((2, 2), (2, 2), (0, 0)), constant_values=1.0))
            rows.append(np.concatenate(crops, 1))
        rows.append(np.ones((8, rows[-1].shape[1], 3), np.float32))
    header = np.ones((28, rows[0].shape[1], 3), np.float32)
    for i, label in enumerate(("video frame", "tracked mesh (new)", "avatar, old tracks", "avatar, new eyelids")):
        cv2.putText(
            header, label, (i * (args.width + 4) + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
        )
    sheet = np.concatenate([header, *rows[:-1]], 0)
    ok, data = cv2.imencode(".png", (np.clip(sheet, 0, 1)[:, :, ::-1] * 255 + 0.5).astype(np.uint8))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(args.out, data.tobytes())
    print(f"wrote {args.out} (blinks at frames {[b.deepest for b in sorted(chosen, key=lambda b: b.deepest)]})")


if __name__ == "__main__":
    main()
