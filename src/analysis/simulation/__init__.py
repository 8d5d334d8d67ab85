"""Seeded simulator of ketamine-clinic data in format v1, with known true effects.

The model is described in ``docs/simulator.md``; every constant is a field of
:class:`SimulationParameters` and can be overridden by keyword.

Modules: :mod:`.parameters` (the constants), :mod:`.streams` (named random streams),
:mod:`.cohort` (patients and adjuncts), :mod:`.induction`, :mod:`.maintenance`
(durability, maintenance, boosters, rapamycin), :mod:`.session_traits` (dissociation,
delivery), :mod:`.assessments`, :mod:`.tables` (format-v1 tables), :mod:`.truth` (ground
truth and latent tables), :mod:`.core` (:func:`simulate`, :class:`Simulation`).

Examples
--------
>>> from analysis.simulation import simulate
>>> sim = simulate(200, seed=0)
>>> sim.dataset().report.n_errors
0
>>> sim.truth["effects"]["durability"]["hazard_ratios"]["rapamycin"]
0.5
"""

from .core import Simulation, simulate
from .parameters import SimulationParameters, parameter_table_markdown
from .truth import observed_induction_outcomes

__all__ = ["Simulation", "SimulationParameters", "observed_induction_outcomes", "parameter_table_markdown", "simulate"]
