"""Benchmark the Gaussian rasterizer backends on a head-like scene.

20,000 anisotropic Gaussians lie on a head-sized closed surface (skull ellipsoid, nose,
ears, neck), flattened along the surface normal like a fitted avatar's, with opacities
mostly high and some faint. Timed at 512x512 and 256x256: forward, and forward+backward
of an L1 photometric loss, for ``cpu`` and ``reference`` in the same run (``gsplat`` too
when CUDA is present). Wall-clock figures are the best of several runs; CPU seconds
(all threads) are printed too, as they say more than wall time on a shared machine. The
reference gets its best torch thread count (1 or 2, tried at 256²): torch's intra-op
threads can make a loaded machine slower, not faster. Prints the required line last:

    cpu fwd+bwd 512²: X s; reference: Y s; speedup: Z×; cpu fwd 512²: W fps
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time

# Both OpenMP runtimes in the process (torch's and Numba's) should let idle workers sleep
# rather than spin: on a shared 2-core machine spinning workers starve the other runtime.
# It must be set before torch loads; it applies to every backend alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from splattalk.avatar.raster import rasterize  # noqa: E402
from splattalk.camera import intrinsics  # noqa: E402


def head_scene(n: int = 20_000, seed: int = 0) -> dict[str, torch.Tensor]:
    """Gaussians on a head-like surface (metres), plus a 3/4-front camera at ~0.5 m."""
    g = torch.Generator().manual_seed(seed)
    # Sample directions, then push points onto a skull ellipsoid with a few bumps.
    dirs = torch.randn(n, 3, generator=g)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    radii = torch.tensor([0.075, 0.1, 0.09])
    pts = dirs * radii
    x, y, z = pts.unbind(1)
    nose = 0.025 * torch.exp(-((x / 0.015) ** 2 + ((y - 0.01) / 0.03) ** 2)) * (z < 0)
    ears = 0.015 * torch.exp(-((y / 0.02) ** 2 + (z / 0.015) ** 2)) * (x.abs() > 0.05)
    neck = (y > 0.06).float()
    pts = pts + dirs * (nose + ears)[:, None]
    pts[:, 1] += neck * 0.05 * (y - 0.06) / 0.04
    normals = dirs / radii
    normals = normals / normals.norm(dim=1, keepdim=True)
    # Rotation whose local z axis is the normal: flattened ("surfel-like") Gaussians.
    up = torch.tensor([0.0, 0.0, 1.0]).expand(n, 3)
    axis = torch.cross(up, normals, dim=1)
    sin = axis.norm(dim=1, keepdim=True).clamp_min(1e-8)
    angle = torch.atan2(sin[:, 0], (up * normals).sum(1))
    axis = axis / sin
    quats = torch.cat([torch.cos(angle / 2)[:, None], axis * torch.sin(angle / 2)[:, None]], 1)
    tangent = 0.0011 + 0.0012 * torch.rand(n, 2, generator=g)
    aniso = torch.exp(0.4 * torch.randn(n, 2, generator=g))
    scales = torch.cat([tangent * aniso, 0.0003 * torch.ones(n, 1)], 1)
    opacities = torch.sigmoid(2.0 + 1.5 * torch.randn(n, generator=g))
    skin = torch.tensor([0.85, 0.62, 0.5])
    colors = (skin + 0.12 * torch.randn(n, 3, generator=g)).clamp(0, 1)
    yaw = math.radians(25)
    rot = torch.tensor([[math.cos(yaw), 0, -math.sin(yaw)], [0, 1, 0], [math.sin(yaw), 0, math.cos(yaw)]])
    viewmat = torch.eye(4)
    viewmat[:3, :3] = rot
    viewmat[:3, 3] = torch.tensor([0.0, -0.01, 0.5])
    return {
        "means": pts,
        "quats": quats,
        "scales": scales,
        "opacities": opacities,
        "colors": colors,
        "viewmat": viewmat,
    }


def camera_k(size: int) -> torch.Tensor:
    # focal 1.8 × the side: a 0.2 m head at 0.5 m fills ~70% of the frame
    return torch.tensor(intrinsics(1.8 * size, size, size), dtype=torch.float32)


def _render(params, size, backend, grad, target=None):
    """One render (and, with ``grad``, an L1 loss backward) of leaf tensors ``params``."""
    for p in params.values():
        p.grad = None
    rgb, alpha = rasterize(
        params["means"],
        params["quats"],
        params["scales"],
        params["opacities"],
        params["colors"],
        params["viewmat"],
        camera_k(size).to(params["means"].device),
        size,
        size,
        torch.ones(3, device=params["means"].device),
        backend=backend,
    )
    if grad:
        (rgb - target).abs().mean().backward()
    return rgb.detach()


def leaves(scene, device="cpu"):
    return {k: v.to(device).clone().requires_grad_(k != "viewmat") for k, v in scene.items()}


def best_time(fn, repeats: int) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run) over ``repeats`` runs."""
    best, cpu = math.inf, math.inf
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return best, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="number of Gaussians")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (best is kept)")
    parser.add_argument("--ref-repeats", type=int, default=1, help="timed reference runs")
    parser.add_argument("--save", default="", help="write the 512² cpu render to this PNG")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    scene = head_scene(args.n)
    print(
        f"scene: {args.n} Gaussians; torch threads {torch.get_num_threads()}; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
        f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}"
    )

    targets = {s: torch.full((s, s, 3), 0.5) for s in (512, 256)}
    params = leaves(scene)
    _render(params, 64, "cpu", True, torch.zeros(64, 64, 3))  # compile / load the kernel cache
    cpu = {}
    for size in (512, 256):
        fwd, fwd_cpu = best_time(lambda s=size: _render(params, s, "cpu", False), args.repeats)
        both, both_cpu = best_time(lambda s=size: _render(params, s, "cpu", True, targets[s]), args.repeats)
        cpu[size] = (fwd, both)
        print(
            f"cpu {size}²: fwd {fwd * 1e3:.1f} ms ({1 / fwd:.1f} fps, {fwd_cpu * 1e3:.0f} ms CPU), "
            f"fwd+bwd {both * 1e3:.1f} ms ({both_cpu * 1e3:.0f} ms CPU)"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS after cpu runs (whole process): {peak_mb:.0f} MB")
    if args.save:
        import numpy as np
        from PIL import Image

        img = _render(params, 512, "cpu", False).clamp(0, 1).mul(255).byte().numpy()
        Image.fromarray(np.ascontiguousarray(img)).save(args.save)
        print(f"wrote {args.save}")

    if torch.cuda.is_available():
        from splattalk.avatar.raster.gsplat import gsplat_available

        if gsplat_available():
            gpu_params = leaves(scene, "cuda")
            for size in (512, 256):
                tgt = targets[size].cuda()

                def run(grad, size=size, tgt=tgt):
                    _render(gpu_params, size, "gsplat", grad, tgt)
                    torch.cuda.synchronize()

                run(True)
                fwd, _ = best_time(lambda: run(False), args.repeats)
                both, _ = best_time(lambda: run(True), args.repeats)
                print(f"gsplat {size}²: fwd {fwd * 1e3:.2f} ms, fwd+bwd {both * 1e3:.2f} ms")

    ref, ref_threads = {}, {}
    threads = torch.get_num_threads()
    for n_threads in sorted({1, threads}):
        torch.set_num_threads(n_threads)
        ref_threads[n_threads], _ = best_time(
            lambda: _render(params, 256, "reference", True, targets[256]), args.ref_repeats
        )
        print(f"reference 256² with {n_threads} torch thread(s): fwd+bwd {ref_threads[n_threads]:.2f} s")
    best_threads = min(ref_threads, key=ref_threads.get)
    torch.set_num_threads(best_threads)
    ref[256] = ref_threads[best_threads]
    ref[512], ref_cpu = best_time(lambda: _render(params, 512, "reference", True, targets[512]), args.ref_repeats)
    torch.set_num_threads(threads)
    print(f"reference 512² with {best_threads} torch thread(s): fwd+bwd {ref[512]:.2f} s ({ref_cpu:.1f} s CPU)")
    for size in (256, 512):
        print(f"speedup {size}²: cpu fwd+bwd is {ref[size] / cpu[size][1]:.1f}× faster than reference")
    fwd512, both512 = cpu[512]
    print(
        f"cpu fwd+bwd 512²: {both512:.2f} s; reference: {ref[512]:.1f} s; "
        f"speedup: {ref[512] / both512:.1f}×; cpu fwd 512²: {1 / fwd512:.1f} fps"
    )


if __name__ == "__main__":
    main()
