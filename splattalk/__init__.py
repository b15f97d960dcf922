"""splattalk: a personal, talking 3D Gaussian head from a phone video.

Subpackages (kept as top-level folders in the repository):
``head`` parametric head models, ``tracking`` video → head-model parameters,
``avatar`` Gaussian avatar + rasterizers, ``talk`` speech → motion,
``viewer`` live viser session, mp4 export and the CLI glue.
"""

__version__ = "0.1.0"
