"""Reenactment lip agreement: mediapipe mouth opening of a driving video vs the avatar video it drove.

    python scripts/eval_reenact.py DRIVER.mp4 RENDERED.mp4 [--figure docs/reenact.png] [--drive-run RUN --avatar AVATAR]

Mouth opening = distance between mediapipe landmarks 13 and 14 (inner lip
midpoints) over the distance between 33 and 263 (outer eye corners), per frame
at 25 fps in both videos. Prints the Pearson r between the two series; the
baseline is the same r with the rendered series shifted by one second (what
chance alignment of two speaking mouths gives). With ``--drive-run`` and
``--avatar`` it also measures the same opening on the avatar's head mesh
under the retargeted parameters (before rendering), which separates what the
retargeting keeps from what the rendered avatar shows. Last line:

    mouth r: X (shifted baseline: Y); frames: N
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from splattalk.mouth_agreement import correlation, video_mouth_opening


def side_by_side(
    driver: Path,
    rendered: Path,
    out: Path,
    series: tuple[np.ndarray, np.ndarray],
    count: int = 5,
    size: int = 192,
) -> None:
    """A strip: ``count`` frames of the driver (top) over the rendered avatar (bottom), at the widest and
    narrowest mouths."""
    from PIL import Image, ImageDraw

    from splattalk.tracking.video import iter_frames, open_source

    a = series[0]
    valid = np.nonzero(np.isfinite(a))[0]
    order = valid[np.argsort(a[valid])]
    picks = sorted(set(np.linspace(0, len(order) - 1, count).round().astype(int)))
    wanted = sorted(int(order[i]) for i in picks)
    rows = []
    for video in (driver, rendered):
        frames = {i: f for i, f in iter_frames(open_source(video), 25.0) if i in wanted}
        rows.append([Image.fromarray(frames[i]).resize((size, size)) for i in wanted])
    sheet = Image.new("RGB", (size * len(wanted), size * 2 + 18), "white")
    draw = ImageDraw.Draw(sheet)
    for c, i in enumerate(wanted):
        sheet.paste(rows[0][c], (c * size, 0))
        sheet.paste(rows[1][c], (c * size, size))
        draw.text(
            (c * size + 4, 2 * size + 3),
            f"frame {i}: mouth {series[0][i]:.2f} / {series[1][i]:.2f}",
            fill="black",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("driver", type=Path)
    parser.add_argument("rendered", type=Path)
    parser.add_argument(
        "--figure",
        type=Path,
        default=None,
        help="write driver-over-avatar frames here (PNG)",
    )
    parser.add_argument(
        "--drive-run",
        type=Path,
        default=None,
        help="the driving run (its tracks) for the mesh-level measure",
    )
    parser.add_argument(
        "--avatar",
        type=Path,
        default=None,
        help="the avatar .safetensors that was driven",
    )
    args = parser.parse_args()
    a = video_mouth_opening(args.driver)
    b = video_mouth_opening(args.rendered)
    print(
        f"driver: {len(a)} frames ({np.isfinite(a).sum()} with a face); "
        f"rendered: {len(b)} frames ({np.isfinite(b).sum()} with a face)"
    )
    r, n = correlation(a, b)
    shift = 25
    base, _ = correlation(a[:-shift], b[shift:])
    if args.drive_run is not None and args.avatar is not None:
        from splattalk.avatar.io import load_avatar
        from splattalk.mouth_agreement import mesh_mouth_opening
        from splattalk.reenact import driven_params, load_driver, retarget

        avatar = load_avatar(args.avatar)
        driver = load_driver(args.drive_run, avatar.model_id, avatar.head.num_expr, progress=False)
        mesh = mesh_mouth_opening(avatar.head, avatar.shape.numpy(), driven_params(*retarget(driver.params)))
        r_mesh, _ = correlation(a, mesh)
        print(
            f"avatar mesh (retargeted, unrendered) vs driver: r {r_mesh:.3f}; mean opening driver {np.nanmean(a):.3f}, "
            f"mesh {np.nanmean(mesh):.3f}, rendered {np.nanmean(b):.3f}"
        )
    if args.figure is not None:
        side_by_side(args.driver, args.rendered, args.figure, (a, b))
        print(f"wrote {args.figure}")
    print(f"mouth r: {r:.3f} (shifted baseline: {base:.3f}); frames: {n}")


if __name__ == "__main__":
    main()
