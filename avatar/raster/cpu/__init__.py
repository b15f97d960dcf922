"""The ``cpu`` backend: :mod:`.backend` wraps the Numba kernels (:mod:`.project`, :mod:`.sh`,
:mod:`.binning`, :mod:`.composite`) as torch autograd Functions with hand-written backward."""
