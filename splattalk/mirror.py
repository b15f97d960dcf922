"""Mirror me: a webcam frame → the avatar's motion, joining the live tracker and reenactment's retargeting.

The viewer package may not import tracking, so ``splattalk view`` hands it
:func:`mirror_factory`'s result: the viewer makes one :class:`Mirror` per tab
that presses "Mirror me" and calls it with each newest webcam frame.

Each frame is tracked with the avatar's head model and identity shape
(:class:`splattalk.tracking.live.LiveTracker`); expression, jaw and eyes are
copied, head rotation, neck and translation are taken relative to the mean of
the first :data:`REFERENCE_FRAMES` frames with a face (the person's resting
pose), as :func:`splattalk.reenact.retarget` does for a driving video.
"""

from __future__ import annotations

import numpy as np

from splattalk.head.params import HeadParams
from splattalk.reenact import retarget
from splattalk.tracking.live import LiveTrackConfig, LiveTracker

REFERENCE_FRAMES = 10
"""Frames with a face whose mean pose is the person's rest pose (0.4 s at 25 fps)."""


def concat(params: list[HeadParams]) -> HeadParams:
    """Frames of several :class:`HeadParams` in one."""
    return HeadParams(
        **{k: np.concatenate([getattr(p, k) for p in params]) for k in ("expr", "jaw", "neck", "rot", "transl", "eyes")}
    )


class Mirror:
    """One webcam stream → (motion row ``[E + 6]``, extras ``[12]``) per frame (the viewer's ``MirrorTracker``)."""

    def __init__(self, head, shape, base: HeadParams | None = None, cfg: LiveTrackConfig | None = None):
        self.tracker = LiveTracker(head, shape, cfg or LiveTrackConfig())
        self.base = base.slice(0) if base is not None else None
        self.reference: list[HeadParams] = []

    def __call__(self, rgb: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray] | None:
        params = self.tracker(rgb, t)
        if params is None:
            return None
        if len(self.reference) < REFERENCE_FRAMES:
            self.reference.append(params)
            self._ref = concat(self.reference)
        motion, extras = retarget(params, self.base, self._ref)
        return motion[0], extras[0]

    def close(self) -> None:
        self.tracker.close()


def mirror_factory(avatar, base: HeadParams | None, cfg: LiveTrackConfig | None = None):
    """``() → Mirror`` for ``avatar`` (posed on ``base``, its tracked subject's parameters, like ``--drive``)."""
    head, shape = avatar.head, avatar.shape.detach().cpu().numpy()

    def make() -> Mirror:
        return Mirror(head, shape, base, cfg)

    return make
