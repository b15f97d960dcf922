"""Speaking styles of the synthetic corpus: how much and how a speaker moves.

A style id in the manifest indexes :data:`STYLES`. Styles differ in head-motion
amplitude and its mix (nods vs. turns vs. rolls), resting pose, drift, brow
activity, blink rate, mouth amplitude and resting expression, so a model
conditioned on a style clip has something real to pick up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MotionStyle:
    """Parameters of one speaking style (angles in degrees)."""

    name: str
    """Short name."""
    nod_deg: float
    """Nod amplitude on a full-strength pitch accent (positive pitches the face down)."""
    turn_deg: float
    """Turn (yaw) amplitude of an accent-driven head turn."""
    roll_deg: float
    """Roll amplitude of an accent-driven head tilt."""
    turn_prob: float
    """Chance that an accent also turns/tilts the head."""
    f0_deg_per_octave: float
    """Chin-up per octave of pitch above the speaker's median (head follows intonation)."""
    drift_deg: float
    """Standard deviation of the slow random head drift, per axis."""
    drift_seconds: float
    """Time scale of that drift."""
    pose_deg: tuple[float, float, float]
    """Resting head rotation (nod, turn, roll) this style holds."""
    brow_gain: float
    """Eyebrow raise on a full-strength accent (expression units)."""
    brow_prob: float
    """Chance that an accent raises the brows."""
    blink_seconds: float
    """Mean interval between blinks."""
    mouth_gain: float
    """Articulation amplitude (jaw and lips)."""
    smile: float
    """Resting smile (with cheek raise)."""
    brow_down: float
    """Resting brow lowering/furrow (a stern look)."""


STYLES = (
    MotionStyle("neutral", 3.0, 2.2, 1.5, 0.3, 3.0, 1.5, 3.0, (0.0, 0.0, 0.0), 0.25, 0.3, 3.5, 1.0, 0.05, 0.0),
    MotionStyle("calm", 1.2, 0.9, 0.6, 0.2, 1.0, 0.8, 5.0, (1.0, 0.0, 0.0), 0.1, 0.15, 4.5, 0.85, 0.1, 0.0),
    MotionStyle("lively", 4.5, 4.5, 3.0, 0.5, 5.0, 2.2, 2.0, (-1.0, 0.0, 0.0), 0.5, 0.6, 2.8, 1.15, 0.3, 0.0),
    MotionStyle("nodding", 6.0, 1.2, 0.8, 0.15, 2.0, 1.2, 3.0, (2.0, 0.0, 0.0), 0.2, 0.25, 3.5, 1.0, 0.1, 0.0),
    MotionStyle("swaying", 1.5, 3.8, 3.0, 0.7, 2.0, 2.2, 4.0, (0.0, 2.0, 3.0), 0.2, 0.3, 3.5, 1.0, 0.1, 0.0),
    MotionStyle("stern", 1.8, 0.9, 0.5, 0.15, 1.0, 0.6, 4.0, (1.5, 0.0, 0.0), 0.08, 0.1, 5.0, 0.9, 0.0, 0.35),
)
"""The corpus styles; a manifest's ``style`` is an index into this tuple."""


def style_id(name: str) -> int:
    """Index of the style called ``name``."""
    return [s.name for s in STYLES].index(name)
