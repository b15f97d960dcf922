"""splattalk: a personal, talking 3D Gaussian head from a phone video.

Subpackages (kept as top-level folders in the repository):
``head`` parametric head models, ``tracking`` video → head-model parameters,
``avatar`` Gaussian avatar + rasterizers, ``talk`` speech → motion,
``viewer`` the live viser session. This package itself is the application:
the ``splattalk`` command (``cli``, ``commands``, ``demo``, ``doctor``, ``export``,
``talk_command``, ``stages``, ``models``) and small leaf modules every package may
use (``run``: the run folder; ``atomic``, ``errors``, ``assets``, ``camera``, ``mp4``).
"""

import os as _os

# Idle OpenMP workers (torch, numba) spin by default; on a small CPU box running torch and the numba
# rasterizer side by side that spinning starves real work (measured 3–10× slowdowns). Must be set
# before the first parallel region, so it lives here, the first module any splattalk entry point imports.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
