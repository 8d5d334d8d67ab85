""":func:`simulate` and the :class:`Simulation` it returns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .assessments import simulate_assessments
from .cohort import draw_cohort
from .induction import simulate_induction
from .maintenance import simulate_post_induction
from .parameters import SimulationParameters, make_parameters
from .streams import Streams
from .tables import build_tables, combine_sessions
from .truth import build_latent, build_truth

__all__ = ["Simulation", "simulate"]

TABLE_NAMES = ("patients", "sessions", "assessments", "medications")


@dataclass(frozen=True, eq=False)
class Simulation:
    """A simulated dataset in format v1 with its ground truth.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        ``patients``, ``sessions``, ``assessments``, ``medications`` in format v1, rows
        sorted by patient then day, columns in a fixed order.
    truth : dict
        JSON-serialisable ground truth: ``parameters`` (every constant used),
        ``effects`` (the true effects, each with its scale), ``realised`` (figures of this
        cohort, e.g. ``response_rate``, ``median_days_to_relapse_after_induction``) and
        ``definitions``.
    latent : dict of str to pandas.DataFrame
        Latent companion tables not part of format v1: per patient (peak improvement
        ``plateau``, ``frailty``, ``durability_after_induction`` ...), per session (its
        improvement ``level``, ``durability`` T_ij, ``fade_day``, ``interval_event``,
        ``rapamycin`` exposure) and per assessment (latent ``improvement``).
    parameters : SimulationParameters

    Examples
    --------
    >>> from analysis.simulation import simulate
    >>> sim = simulate(200, seed=1)
    >>> sorted(sim.tables)
    ['assessments', 'medications', 'patients', 'sessions']
    >>> sim.truth["effects"]["durability"]["hazard_ratios"]["rapamycin"]
    0.5
    """

    tables: dict[str, pd.DataFrame]
    truth: dict[str, Any]
    latent: dict[str, pd.DataFrame] = field(repr=False)
    parameters: SimulationParameters = field(repr=False)

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(t)} {name}" for name, t in self.tables.items())
        return f"Simulation(seed={self.truth['seed']}, {counts})"

    def dataset(self):
        """The tables validated into an :class:`analysis.Dataset`.

        Examples
        --------
        >>> from analysis.simulation import simulate
        >>> simulate(100, seed=2).dataset().report.n_errors
        0
        """
        from ..dataset import Dataset

        meds = self.tables["medications"]
        return Dataset.from_frames(self.tables["patients"], self.tables["sessions"], self.tables["assessments"],
                                   meds if len(meds) else None)

    def write(self, out_dir: str | Path, format: str = "csv") -> list[Path]:
        """Write the tables and ``ground_truth.json`` to a folder; return the paths written.

        The same seed and parameters give byte-identical files. An empty medications table
        is not written (format v1 does not allow an empty table; the table is optional).
        Table files of either format already in the folder under these four names are
        replaced, so the folder always holds exactly one dataset.

        Parameters
        ----------
        out_dir : str or Path
            Folder to write to (created if needed).
        format : {"csv", "parquet"}
            File format of the tables.

        Examples
        --------
        >>> from analysis.simulation import simulate
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     paths = simulate(50).write(folder)
        ...     [p.name for p in paths]
        ['patients.csv', 'sessions.csv', 'assessments.csv', 'medications.csv', 'ground_truth.json']
        """
        if format not in ("csv", "parquet"):
            raise ValueError(f"format must be 'csv' or 'parquet', got {format!r}")
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name in TABLE_NAMES:
            frame = self.tables[name]
            path = folder / f"{name}.{format}"
            for stale in (folder / f"{name}.csv", folder / f"{name}.parquet"):
                if stale.exists():
                    stale.unlink()
            if len(frame) == 0:
                continue
            if format == "csv":
                _csv_ready(frame).to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
            else:
                frame.to_parquet(path, index=False, engine="pyarrow", compression="snappy")
            written.append(path)
        path = folder / "ground_truth.json"
        path.write_text(json.dumps(self.truth, sort_keys=True, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        written.append(path)
        return written


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Booleans as lower-case ``true``/``false`` as in the format's examples."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].map({True: "true", False: "false"})
    return out


def simulate(n_patients: int = 500, *, seed: int = 0, n_sites: int = 3, **params: Any) -> Simulation:
    """Simulate a cohort of ketamine patients in data format v1, with known true effects.

    The model (``docs/simulator.md``): each patient has a peak improvement fraction
    ``P_i = expit(eta_i)`` reached over six induction sessions; the benefit of every
    infusion from the last induction session on holds for a Weibull
    proportional-hazards time ``T_ij`` with a shared patient frailty, then falls to a
    residual; responders continue with maintenance sessions or boosters; benzodiazepines,
    lamotrigine and rapamycin are given with confounding by indication.

    Parameters
    ----------
    n_patients : int, default 500
        Number of patients.
    seed : int, default 0
        Random seed; the same seed and parameters give identical tables.
    n_sites : int, default 3
        Number of sites (``site_A``, ``site_B``, ...).
    **params
        Any field of :class:`SimulationParameters` (e.g. ``hr_rapamycin=0.7``); an unknown
        name raises TypeError.

    Returns
    -------
    Simulation

    Examples
    --------
    >>> from analysis.simulation import simulate
    >>> sim = simulate(300, seed=0, hr_rapamycin=0.6)
    >>> sim.truth["parameters"]["hr_rapamycin"]
    0.6
    >>> list(sim.tables["sessions"].columns)[:4]
    ['patient_id', 'day', 'route', 'dose_mg_per_kg']
    """
    p = make_parameters(params)
    if isinstance(n_patients, bool) or not isinstance(n_patients, (int, np.integer)) or n_patients < 1:
        raise ValueError(f"n_patients must be a positive integer, got {n_patients!r}")
    if isinstance(n_sites, bool) or not isinstance(n_sites, (int, np.integer)) or n_sites < 1:
        raise ValueError(f"n_sites must be a positive integer, got {n_sites!r}")
    rng = Streams(seed)
    cohort = draw_cohort(n_patients, n_sites, p, rng("cohort"), rng("adjuncts"), rng("response"), rng("sites"))
    induction = simulate_induction(cohort, p, rng("induction"))
    post = simulate_post_induction(cohort, induction, p, rng("maintenance"), rng("durability"))
    sessions = combine_sessions(induction, post)
    assessments = simulate_assessments(cohort, induction, post, sessions.lookup(p.residual_fraction), sessions.patient,
                                       sessions.day, p, rng("assessments"), rng("scores"))
    tables = build_tables(cohort, post, sessions, assessments, p)
    truth = build_truth(n_sites, int(seed), p, cohort, induction, post, sessions, assessments, tables)
    latent = build_latent(cohort, induction, post, sessions, assessments)
    return Simulation(tables=tables, truth=truth, latent=latent, parameters=p)
