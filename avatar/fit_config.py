"""Configuration of the avatar fitting stage (light: no torch at import, so ``splattalk --help`` is instant)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CARRYING_REGIONS = ("face", "lips", "eyes", "mouth_interior", "teeth", "scalp", "skull", "neck", "ears")
"""Head-model regions whose triangles carry Gaussians (the default head names these; FLAME has none,
and then every triangle carries). Triangles touching a vertex of no region (eye sockets) never do."""


@dataclass(frozen=True)
class FitConfig:
    """Fit Gaussians bound to the head mesh to a tracked video (see shared/DESIGN.md, run folder)."""

    resolution: int = 512
    """Side of the square training images in pixels (frames, masks and intrinsics are rescaled): the 512² that
    exports and the viewer show (256 fits about twice as fast and renders softer)."""
    coarse_fraction: float = 0.5
    """The first this fraction of the iterations trains at half resolution (2×2-averaged targets), the rest at
    ``resolution``: coarse-to-fine, so the early work costs a quarter of the pixels (0: full resolution throughout)."""
    iterations: int = 1500
    """Optimisation steps, one training frame each."""
    backend: Literal["auto", "cpu", "gsplat"] = "auto"
    """Rasterizer: gsplat on CUDA, our own CPU kernels otherwise (auto picks)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the tensors live: cuda when available (auto), else cpu."""
    threads: int | None = 1
    """torch CPU threads during the fit (None: torch's default). The rasterizer's numba kernels have their own
    pool; torch's per-step work is many small tensor ops, where waking a second thread cost more than it saved
    (3x slower steps on the busy 2-core machine)."""
    seed: int = 0
    """Seeds initialisation, frame order and densification: the same seed gives the same avatar."""
    holdout_fraction: float = 0.1
    """The last this fraction of frames never trains; PSNR/SSIM are measured on them."""
    background: str = "auto"
    """Colour behind the head, as 'r,g,b' in [0, 1], or 'auto': the median of the pixels the masks call background.
    Targets are the frames composited onto it through the masks; renders use it too."""

    head_only: bool = True
    """Cut each frame's foreground mask to the tracked head mesh's silhouette (grown for hair): shoulders and
    clothes go to the background instead of pulling the neck's Gaussians down into streaks (on real clips with
    suits). It also leaves out the lower neck (about a collar's height under the chin); --no-head-only keeps the
    whole matte (the demo does, for the synthetic sample whose neck is part of the head)."""

    # -- initialisation --------------------------------------------------------------------
    init_gaussians: int = 12000
    """Gaussians placed area-uniformly on the carrying triangles at the start (at least one per triangle)."""
    init_frames: int = 8
    """Training frames (spread over the first part of the video) whose pixels give the initial colours."""
    init_opacity: float = 0.6
    """Starting opacity of every Gaussian."""
    sh_degree: int = 0
    """Spherical-harmonics degree of the colours (0: view-independent; up to 3). A monocular video pins
    view dependence down poorly: higher degrees showed off-colour patches on turns the video never made."""

    # -- optimisation ----------------------------------------------------------------------
    lr_means: float = 0.02
    """Learning rate of the local offsets (units: the parent triangle's size); decays ×0.01 over the run."""
    lr_scales: float = 0.01
    """Learning rate of the log scales."""
    lr_quats: float = 0.002
    """Learning rate of the local rotations."""
    lr_opacity: float = 0.05
    """Learning rate of the opacity logits."""
    lr_sh: float = 0.005
    """Learning rate of the degree-0 colour; higher degrees get 1/20 of it."""
    ssim_weight: float = 0.2
    """Weight of D-SSIM in the photometric loss (the rest is L1)."""
    alpha_weight: float = 0.1
    """Weight of the matte term: L1 between the render's opacity and the frame's (head-cut) mask, so Gaussians
    at and outside the matte's edge become transparent instead of taking the backdrop's colour, and the head is
    opaque where the video saw it: fewer backdrop patches and see-through speckles when the head turns (0: off)."""
    offset_weight: float = 0.01
    """Penalty on local offsets beyond ``offset_threshold`` triangle sizes (keeps Gaussians near their triangle)."""
    offset_threshold: float = 1.0
    """Local offset (in triangle sizes) allowed before ``offset_weight`` applies."""
    scale_weight: float = 1.0
    """Penalty on local scales beyond ``scale_threshold`` triangle sizes."""
    scale_threshold: float = 0.6
    """Local scale (in triangle sizes) allowed before ``scale_weight`` applies."""

    # -- densification ---------------------------------------------------------------------
    max_gaussians: int | None = None
    """Cap on the number of Gaussians (None: 25k on the CPU backend, 100k with gsplat)."""
    densify_from: int = 300
    """First iteration that densifies."""
    densify_until: float = 0.6
    """Fraction of the run after which the count stays fixed (pruning of transparent ones continues)."""
    densify_every: int = 100
    """Iterations between densification steps."""
    grad_threshold: float = 0.0002
    """Mean view-space positional gradient (NDC units, as 3DGS) above which a Gaussian is cloned or split."""
    dense_fraction: float = 0.01
    """Gaussians larger than this fraction of the head's size are split, smaller ones cloned."""
    prune_opacity: float = 0.005
    """Gaussians more transparent than this are removed."""
    prune_size: float = 0.1
    """Gaussians larger than this fraction of the head's size are removed."""

    # -- per-frame tracking refinement -----------------------------------------------------
    refine_tracking: bool = False
    """Also fine-tune the tracked per-frame parameters of training frames (small steps, pulled back to the tracks)."""
    lr_tracking: float = 0.0005
    """Learning rate of the per-frame parameter corrections."""
    tracking_weight: float = 1.0
    """Penalty on the squared per-frame corrections (expression coefficients, radians, decimetres)."""

    # -- photometric tracking refinement of the held-out frames ------------------------------
    retrack_steps: int = 20
    """After the fit, refine each held-out frame's tracked parameters against its image with the avatar frozen
    (``avatar/retrack.py``; Adam steps per frame, 0: off). The held-out score is then reported twice: with the
    tracks and with the refined tracks (``RUN/avatar/retracked.npz``). The Gaussians never see those frames."""

    # -- bookkeeping -----------------------------------------------------------------------
    checkpoint_every: int = 200
    """Iterations between resumable checkpoints (atomic)."""
    eval_every: int = 250
    """Iterations between held-out evaluations (PSNR in the progress bar and the metrics history)."""
    preview_every: int = 500
    """Iterations between preview PNGs (truth | render | error) of held-out frames; 0 = only at the end."""
