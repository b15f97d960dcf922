"""Differentiable 3D Gaussian rasterizer: :func:`rasterize` is the entry point.

- :mod:`.api`: ``rasterize()`` — argument checks, backend choice, outputs;
- :mod:`.conventions`: the numerical conventions every backend follows (gsplat's);
- :mod:`.cpu`: own Numba kernels with hand-written backward (the CPU backend);
- :mod:`.gsplat`: ``gsplat.rasterization`` on CUDA (optional ``[gpu]`` extra);
- :mod:`.reference`: the pure-torch oracle the other backends are tested against.

gsplat itself is imported only when its backend is chosen (it is optional).
"""

from splattalk.avatar.raster.api import BACKENDS, Backend, choose_backend, rasterize

__all__ = ["BACKENDS", "Backend", "choose_backend", "rasterize"]
