"""Independent, named random streams derived from one seed.

Each part of the simulation draws from its own stream, so changing how one part draws
(for example adding an assessment) does not shift the random numbers of another part.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Streams"]

#: stream names in a fixed order; append new names at the end to keep old streams unchanged
_NAMES = ("cohort", "adjuncts", "response", "induction", "maintenance", "durability", "assessments", "scores", "sites")


class Streams:
    """Random generators for the parts of a simulation, all determined by ``seed``.

    Examples
    --------
    >>> from analysis.simulation.streams import Streams
    >>> a, b = Streams(0), Streams(0)
    >>> float(a("cohort").random()) == float(b("cohort").random())
    True
    """

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)

    def __call__(self, name: str) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_NAMES.index(name),)))
